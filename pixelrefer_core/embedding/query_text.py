"""What a search text must be: some words that say what to look for.

A text of only function words ("the", "of a", "is it") carries no meaning an embedder can rank by: every
description would score about the same, and the ranking would be noise. Such a text is refused with a
message saying so. The list is the usual English function words (articles, pronouns, auxiliaries,
prepositions, conjunctions); words that describe things (colours, "left", "small", "two") are not in it.
"""

from __future__ import annotations

import re

from pixelrefer_core.embedding.errors import QueryTextError

__all__ = ["MAX_QUERY_CHARS", "STOP_WORDS", "check_query_text"]

MAX_QUERY_CHARS = 2000
STOP_WORDS = frozenset("""
a an the this that these those some any each every no
i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
what which who whom whose where when why how
am is are was were be been being do does did doing done have has had having
will would shall should can could may might must
and or but nor so yet if then than because as while until though although
of at by for with about against between into through during before after above below to from up down
in out on off over under again further once here there
all both few more most other such only own same too very just also not
s t don isn aren wasn weren hasn haven hadn doesn didn won wouldn shouldn couldn mustn let lets
""".split())
_WORD = re.compile(r"\w+", re.UNICODE)


def check_query_text(text: str) -> str:
    """`text` stripped, or QueryTextError when it is empty, too long, or only stop words."""
    if not isinstance(text, str) or not text.strip():
        raise QueryTextError("the search text is empty: say what to look for, e.g. \"a person carrying a red bag\"")
    text = " ".join(text.split())
    if len(text) > MAX_QUERY_CHARS:
        raise QueryTextError(f"the search text is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        raise QueryTextError(f"the search text {text!r} has no words to search for")
    if all(w in STOP_WORDS for w in words):
        raise QueryTextError(f"the search text {text!r} is only stop words ({', '.join(sorted(set(words)))}), "
                             "which match every description alike: add what to look for, e.g. \"red car\"")
    return text
