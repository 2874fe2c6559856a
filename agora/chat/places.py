"""Where a message wants its service hosted: a region said as the clouds name it ('eu-central', 'us-east-1'), or a
place for one — a city, state or country ('Frankfurt' → eu-central), or a continent ('Europe' → eu)."""

from __future__ import annotations

import re

# Places said for the hub's regions (as the clouds place theirs): cities, states and countries to a region; a place
# in a part of a continent the hub has no region for, and the continents, to the continent ("eu" is every eu-…).
PLACES = {
    "west coast": "us-west", "california": "us-west", "oregon": "us-west", "seattle": "us-west", "san francisco": "us-west",
    "bay area": "us-west", "silicon valley": "us-west", "los angeles": "us-west", "san diego": "us-west",
    "portland": "us-west", "nevada": "us-west", "east coast": "us-east", "virginia": "us-east", "new york": "us-east",
    "nyc": "us-east", "ohio": "us-east", "boston": "us-east", "new jersey": "us-east", "philadelphia": "us-east",
    "atlanta": "us-east", "miami": "us-east", "florida": "us-east", "carolina": "us-east", "washington dc": "us-east",
    "frankfurt": "eu-central", "germany": "eu-central", "berlin": "eu-central", "munich": "eu-central",
    "hamburg": "eu-central", "central europe": "eu-central", "austria": "eu-central", "vienna": "eu-central",
    "switzerland": "eu-central", "zurich": "eu-central", "poland": "eu-central", "warsaw": "eu-central",
    "prague": "eu-central", "ireland": "eu-west", "dublin": "eu-west", "london": "eu-west", "uk": "eu-west",
    "britain": "eu-west", "england": "eu-west", "paris": "eu-west", "france": "eu-west", "western europe": "eu-west",
    "netherlands": "eu-west", "amsterdam": "eu-west", "belgium": "eu-west", "brussels": "eu-west", "spain": "eu-west",
    "madrid": "eu-west", "barcelona": "eu-west", "portugal": "eu-west", "lisbon": "eu-west", "tokyo": "ap-northeast",
    "japan": "ap-northeast", "osaka": "ap-northeast", "seoul": "ap-northeast", "korea": "ap-northeast",
    "india": "ap-south", "mumbai": "ap-south", "bangalore": "ap-south", "bengaluru": "ap-south", "delhi": "ap-south",
    "hyderabad": "ap-south", "chennai": "ap-south", "pune": "ap-south", "singapore": "ap-southeast",
    "sydney": "ap-southeast", "australia": "ap-southeast", "italy": "eu", "milan": "eu", "rome": "eu", "sweden": "eu",
    "stockholm": "eu", "scandinavia": "eu", "nordics": "eu", "finland": "eu", "norway": "eu", "denmark": "eu",
    "europe": "eu", "european": "eu", "eu": "eu", "emea": "eu", "us": "us", "usa": "us", "u.s.": "us", "america": "us",
    "united states": "us", "the states": "us", "north america": "us", "asia": "ap", "apac": "ap",
    "asia pacific": "ap", "asia-pacific": "ap",
}  # fmt: skip


_LOCATIVE = (
    r"(?:in|on|inside|within|near|from|out\s+of|(?:based|hosted|located|running|deployed|servers?|runs?|data(?:\s+center)?"
    r"|data\s+(?:(?:must|has\s+to|should|needs\s+to|will)\s+)?(?:stays?|remains?|resides?|be\s+kept))\s+(?:anywhere\s+)?(?:in|out\s+of))"
)
_REGION_CODE = re.compile(rf"(?:\b{_LOCATIVE}\s+(?:the\s+)?)?\b(?P<code>(?:us|eu|ap)[- ](?:east|west|central|south|north|northeast|southeast|northwest|southwest))(?:-\d)?\b", re.IGNORECASE)
_PLACE_NAMES = "|".join(re.escape(p) for p in sorted(PLACES, key=len, reverse=True))
_PLACE_SAID = re.compile(
    rf"\b{_LOCATIVE}\s+(?:the\s+)?(?P<place>{_PLACE_NAMES})\b(?:\s+region)?|\b(?P<adjective>{_PLACE_NAMES})[-\s](?:based|hosted|hosting|region|only)\b"
    rf"|,\s*(?P<alone>{_PLACE_NAMES})\s*[?.!]*$",
    re.IGNORECASE,
)
_HOSTING = re.compile(r"(?:based|hosted|located|running|deployed|servers?|data|runs?)\b", re.IGNORECASE)
# Hosted near the user, wherever that is: no region of its own, and no part of the need.
NEAR = re.compile(r"\b(?:(?:hosted|based|located|running)\s+)?(?:close\s+(?:to|by)|near(?:\s+to)?|next\s+to)\s+(?:us|me|them|you|here|(?:our|my|their)\s+\w+)\b|\bnearby\b", re.IGNORECASE)


def region_in(rest: str, asides: list[str]) -> tuple[str | None, str]:
    """A region said as a code ('eu-central'), or a place after 'in', 'hosted in' … ('Frankfurt' → eu-central,
    'Europe' → eu), before 'based', 'hosting' …, or alone at the end ('…, europe'): where it is hosted if the message
    says so, else the first place said, unless only said in an aside. Returns it and the text without the places and
    without "close to us"."""
    code = _REGION_CODE.search(rest)
    if code is not None:
        region = code.group("code").lower().replace(" ", "-")
        return region, NEAR.sub(" ", rest.replace(code.group(0), " "))
    found = [(said, place) for said in _PLACE_SAID.finditer(rest) if (place := _place(said)) is not None]
    for said, _ in found:
        rest = rest.replace(said.group(0), " ")
    found = [(said, place) for said, place in found if not any(said.group(0).lower() in aside for aside in asides)]
    if not found:
        return None, NEAR.sub(" ", rest)
    region = next((place for said, place in found if said.group("adjective") or _HOSTING.match(said.group(0))), found[0][1])
    return region, NEAR.sub(" ", rest)


def _place(said: re.Match[str]) -> str | None:
    """The region of a place said, None for "us" the pronoun ("from us")."""
    place = (said.group("place") or said.group("adjective") or said.group("alone")).lower()
    if place == "us" and not re.search(r"\bUS\b|\bin\s+the\s+us\b", said.group(0)):
        return None
    return PLACES[place]
