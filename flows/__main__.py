import sys

try:
    from flows.cli import main
except KeyboardInterrupt:  # Ctrl-C before the CLI's own handler exists: still one line, still 130
    print("pixelrefer: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
