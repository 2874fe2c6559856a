"""Spanish, French and German messages in the reader's English: the words that ask (find, how many, tell me about,
start, register), the constraints (prices, units, free, places, success rates) and the names of languages.

Only those words are rewritten, so the rules for English read the rest; what the user wants (the need) keeps their
own words, in their own language. Each table row is a pattern (case-insensitive, on whole words) and its English.
"""

from __future__ import annotations

import re

# What a message asks for. Spanish, then French, then German; a longer phrase before the words it starts with.
_ASKING = (
    (r"(?:d[eé]me|dame) (?:los |m[aá]s )?detalles (?:de|sobre)", "details about"),
    (r"(?:h[aá]blame|cu[eé]ntame) (?:m[aá]s )?(?:de|sobre)", "tell me about"),
    (r"(?:informaci[oó]n|detalles) (?:de|sobre)", "details about"),
    (r"qu[eé] (?:hace|ofrece)|qué es", "what is"), (r"cu[aá]nto (?:cuesta|vale|cobra)", "how much is"),
    (r"cu[aá]ntos|cu[aá]ntas", "how many"), (r"estad[ií]sticas", "statistics"),
    (r"busco|buscar|b[uú]scame|encuentra|encu[eé]ntrame|necesito|quiero|mu[eé]strame", "find"),
    (r"inicia|iniciar|lanza|lanzar|arranca|arrancar|despliega|desplegar|levanta|levantar", "start"),
    (r"una (?:nueva )?instancia de", "an instance of"),
    (r"registra|registrar|reg[ií]strame|da de alta|dar de alta", "register"), (r"llamad[oa]", "named"),
    (r"con (?:las |la )?capacidad(?:es)?", "with capabilities"), (r"capacidad(?:es)?", "capabilities"), (r"por favor", "please"),
    (r"(?:mi|nuestro|nuestra) (?:nuevo )?(?:agente|bot)", "my agent"),
    (r"(?:parle|parlez|dis|dites)[- ]moi (?:plus |tout )?(?:de|d'|du|des|sur)", "tell me about"),
    (r"(?:d[ée]tails|informations?|infos?) (?:de|sur|du|des|d')", "details about"),
    (r"qu' est-ce que (?:fait|propose)|que (?:fait|propose)|c' est quoi", "what is"),
    (r"combien (?:co[uû]te|vaut|facture)", "how much is"), (r"combien(?: de| d')?", "how many"), (r"statistiques", "statistics"),
    (r"je (?:re)?cherche|(?:re)?cherche[sz]?[- ]moi|trouve[sz]?[- ]moi|trouvez|j' ai besoin d'|il me faut|montre[sz]?[- ]moi", "find"),
    (r"y a-t-il|est-ce qu' il y a|existe-t-il", "is there"), (r"quelque chose", "something"),
    (r"lance[rz]?|d[ée]marre[rz]?|d[ée]ploie[rz]?|d[ée]ployer", "start"), (r"une (?:nouvelle )?instance de", "an instance of"),
    (r"enregistre[rz]?|inscri(?:re|s|vez)", "register"), (r"nouvel agent", "new agent"), (r"nomm[ée]e?|appel[ée]e?", "named"),
    (r"avec (?:les |la )?capacit[ée]s?", "with capabilities"), (r"capacit[ée]s?", "capabilities"),
    (r"s' il (?:te|vous) pla[iî]t", "please"), (r"(?:mon|notre) (?:nouvel )?(?:agent|bot)", "my agent"),
    (r"erz[aä]hl(?:en sie)? mir (?:mehr |alles )?(?:über|von)", "tell me about"),
    (r"(?:details|informationen|infos) (?:zu|über|von|für)", "details about"),
    (r"was (?:macht|ist|bietet|kann)", "what is"), (r"was kostet|wie teuer ist", "how much is"),
    (r"wie ?viele", "how many"), (r"statistik(?:en)?", "statistics"),
    (r"ich suche|such mir|suche|finde mir|finde|ich brauche|wir brauchen|brauche|zeig(?:e)? mir", "find"),
    (r"gibt es", "is there"), (r"etwas", "something"),
    (r"starte|starten sie|starten", "start"), (r"eine (?:neue )?instanz von", "an instance of"),
    (r"registriere|registrieren sie|registrieren", "register"), (r"namens|genannt|mit dem namen", "named"),
    (r"mit (?:den |der )?f[aä]higkeit(?:en)?", "with capabilities"), (r"f[aä]higkeit(?:en)?", "capabilities"),
    (r"(?:mein|meinen|unser|unseren) (?:neuen? )?(?:agenten|agent|bot)", "my agent"), (r"bitte", "please"),
)  # fmt: skip
# Constraints: ceilings, amounts, units, free, hosting, success rates, speaking a language.
_CONSTRAINTS = (
    (r"por menos de|menos de|como m[aá]ximo|m[aá]ximo|no m[aá]s de|hasta", "under"),
    (r"un (?:c[eé]ntimo|centavo)", "1 cent"), (r"un d[oó]lar", "1 dollar"), (r"c[eé]ntimos?|centavos?", "cents"),
    (r"d[oó]lares", "dollars"), (r"d[oó]lar", "dollar"),
    (r"por (?:petici[oó]n|solicitud|llamada|consulta|uso)", "per request"), (r"por hora", "per hour"), (r"por minuto", "per minute"),
    (r"gratis|gratuitos?|gratuitas?|sin coste|sin costo", "free"), (r"(?:alojad[oa]s?|hospedad[oa]s?)", "hosted"),
    (r"tasa de [eé]xito", "success rate"), (r"al menos", "at least"), (r"que hablen?", "that speaks"),
    (r"moins(?: de| d')|au plus|pas plus(?: de| d')|jusqu' [àa]", "under"), (r"un centime", "1 cent"), (r"centimes?", "cents"),
    (r"par (?:requ[eê]te|demande|appel)", "per request"), (r"par heure|[àa] l' heure", "per hour"), (r"par minute", "per minute"),
    (r"gratuit(?:e|s|es)?", "free"), (r"h[ée]berg[ée]e?s?", "hosted"),
    (r"taux de (?:r[ée]ussite|succ[eè]s)", "success rate"), (r"au moins", "at least"), (r"qui parlen?t?", "that speaks"),
    (r"unter|weniger als|h[oö]chstens|maximal|nicht mehr als|bis zu", "under"), (r"einen cent|ein cent", "1 cent"),
    (r"(?:pro|je) (?:anfrage|aufruf|request)", "per request"), (r"(?:pro|je) stunde|st[uü]ndlich", "per hour"),
    (r"(?:pro|je) minute", "per minute"), (r"kostenlos(?:e|en|er|es)?|umsonst", "free"),
    (r"gehostet|betrieben", "hosted"), (r"erfolgsquote|erfolgsrate", "success rate"), (r"mindestens", "at least"),
)  # fmt: skip
# Places, with the word for "in" before them ("hébergé en Europe", "in Deutschland", "en la India").
_PLACES = {
    "europa": "europe", "europe": "europe", "alemania": "germany", "allemagne": "germany", "deutschland": "germany",
    "japón": "japan", "japon": "japan", "japan": "japan", "tokio": "tokyo", "tokyo": "tokyo", "fráncfort": "frankfurt",
    "francfort": "frankfurt", "frankfurt": "frankfurt", "india": "india", "inde": "india", "indien": "india",
    "irlanda": "ireland", "irlande": "ireland", "irland": "ireland", "londres": "london", "london": "london",
    "münchen": "munich", "múnich": "munich", "francia": "france", "frankreich": "france", "france": "france",
    "asia": "asia", "asie": "asia", "asien": "asia", "estados unidos": "the us", "ee.uu.": "the us", "eeuu": "the us",
    "états-unis": "the us", "usa": "the us",
}  # fmt: skip
_PLACE = re.compile(rf"(?<!\w)(?:en|au|aux|à|in|im)\s+(?:la\s+|los\s+|l'\s*|den\s+|der\s+)?(?P<place>{'|'.join(sorted(map(re.escape, _PLACES), key=len, reverse=True))})(?!\w)", re.IGNORECASE)
CUES = [(re.compile(rf"(?<!\w)(?:{pattern})(?:(?<=')|(?!\w))", re.IGNORECASE), english) for pattern, english in (*_ASKING, *_CONSTRAINTS)]

# Names of languages in Spanish, French and German, and as each language names itself: read for the language filter,
# left as said in the need.
LANGUAGE_NAMES = {
    "inglés": "en", "ingles": "en", "español": "es", "espanol": "es", "castellano": "es", "francés": "fr",
    "frances": "fr", "alemán": "de", "aleman": "de", "italiano": "it", "portugués": "pt", "portugues": "pt",
    "japonés": "ja", "japones": "ja", "chino": "zh", "ruso": "ru", "árabe": "ar", "arabe": "ar", "coreano": "ko",
    "holandés": "nl", "holandes": "nl", "polaco": "pl", "turco": "tr",
    "anglais": "en", "français": "fr", "francais": "fr", "allemand": "de", "espagnol": "es", "italien": "it",
    "portugais": "pt", "japonais": "ja", "chinois": "zh", "russe": "ru", "coréen": "ko", "néerlandais": "nl",
    "polonais": "pl", "turc": "tr",
    "englisch": "en", "deutsch": "de", "französisch": "fr", "spanisch": "es", "italienisch": "it",
    "portugiesisch": "pt", "japanisch": "ja", "chinesisch": "zh", "russisch": "ru", "arabisch": "ar",
    "koreanisch": "ko", "niederländisch": "nl", "polnisch": "pl", "türkisch": "tr",
    "português": "pt", "nederlands": "nl", "polski": "pl", "türkçe": "tr", "nihongo": "ja", "日本語": "ja", "中文": "zh",
    "한국어": "ko", "русский": "ru", "العربية": "ar", "हिन्दी": "hi",
}  # fmt: skip
# Spanish function words and chat words: no part of a need.
NOISE = frozenset(
    """un una unos unas el la los las lo de del al a que para por en y o con sin me mi mis tu tus su sus se es son
    hay algún alguno alguna algunos algo alguien agente agentes bot bots herramienta herramientas servicio servicios
    favor puedes podrías quiero necesito busco me gustaría cual cuál cuales cuáles qué cómo dónde este esta estos estas""".split()
)  # fmt: skip


# French elision ("d'agents", "l'heure", "qu'il"): the article apart from its word, so patterns see whole words.
_ELISION = re.compile(r"(?<!\w)(c|d|j|l|n|qu|s)'(?=\w)", re.IGNORECASE)


def in_english(text: str) -> str:
    """``text`` with the Spanish, French and German words that ask or constrain said in English."""
    text = _ELISION.sub(r"\1' ", text)
    for pattern, english in CUES:
        text = pattern.sub(english, text)
    return _PLACE.sub(lambda m: "in " + _PLACES[m.group("place").lower()], text)
