"""Synthetic marketplace listings for search latency runs at 10,000 and 100,000 listings.

``generate(n, seed)`` combines a small vocabulary per category (name stems, what the service does, what it works
on, capabilities) with shared description templates, realistic price points per pricing model, regions and
languages. The output has the format of ``corpus.json`` (kind ``listing``, ids ``S0000001``…) and passes the same
checks. It is deterministic: the same ``n`` and ``seed`` give the same listings, and ``generate(n)`` is the start
of ``generate(m)`` for ``m > n``. Standard library only; 100,000 listings take a second or two.

These listings are for timing, not for judging: no query in ``queries.json`` has judgments about them.
"""

from __future__ import annotations

import random
from typing import Any

# category: (name stems, what it does, what it works on, capabilities)
VOCABULARY: dict[str, tuple[list[str], str, list[str], list[str]]] = {
    "translation": (["Lingua", "Babel", "Transla", "Polyglot"], "translates",
                    ["contracts", "product pages", "support emails", "manuals"],
                    ["translation", "machine-translation", "localization", "glossary", "document-translation"]),
    "summarization": (["Brief", "Gist", "Digest", "Condense"], "summarises",
                      ["reports", "articles", "meeting transcripts", "email threads"],
                      ["summarization", "bullet-points", "executive-summary", "meeting-summary"]),
    "speech-to-text": (["Scribe", "Transcript", "Dictato", "Echo"], "transcribes",
                       ["calls", "podcasts", "voice notes", "interviews"],
                       ["speech-to-text", "transcription", "diarization", "timestamps", "asr"]),
    "text-to-speech": (["Voice", "Narra", "Vox", "Speak"], "voices",
                       ["articles", "audiobooks", "IVR prompts", "lessons"],
                       ["text-to-speech", "ssml", "neural-voices", "narration"]),
    "code-generation": (["Code", "Dev", "Stack", "Forge"], "writes code for",
                        ["APIs", "data models", "unit tests", "CLI tools"],
                        ["code-generation", "python", "typescript", "sql", "tests"]),
    "code-review": (["Review", "Lint", "Diff", "Merge"], "reviews",
                    ["pull requests", "diffs", "legacy modules", "infrastructure code"],
                    ["code-review", "linting", "pull-requests", "static-analysis"]),
    "document-extraction": (["Doc", "Parse", "Scan", "Extract"], "extracts fields from",
                            ["invoices", "receipts", "forms", "bank statements"],
                            ["ocr", "invoice-extraction", "table-extraction", "form-extraction"]),
    "customer-support": (["Help", "Desk", "Care", "Support"], "answers",
                         ["support tickets", "live chats", "customer emails", "refund requests"],
                         ["customer-support", "chatbot", "ticket-classification", "knowledge-base"]),
    "sentiment-analysis": (["Mood", "Senti", "Tone", "Pulse"], "scores the sentiment of",
                           ["reviews", "tweets", "survey answers", "support chats"],
                           ["sentiment-analysis", "emotion-detection", "text-analytics"]),
    "image-generation": (["Pixel", "Canvas", "Render", "Dream"], "generates",
                         ["product shots", "illustrations", "icons", "banners"],
                         ["image-generation", "text-to-image", "illustration", "vector"]),
    "computer-vision": (["Vision", "Sight", "Lens", "Optic"], "detects objects in",
                        ["camera feeds", "product photos", "satellite images", "shelf photos"],
                        ["object-detection", "image-classification", "image-tagging", "ocr"]),
    "legal": (["Lex", "Clause", "Counsel", "Juris"], "reviews",
              ["contracts", "NDAs", "privacy policies", "court filings"],
              ["contract-review", "legal-research", "compliance", "clause-analysis"]),
    "healthcare": (["Medi", "Clinic", "Care", "Health"], "documents",
                   ["patient visits", "lab reports", "discharge notes", "referrals"],
                   ["clinical-documentation", "medical-coding", "triage", "hipaa"]),
    "finance": (["Ledger", "Fin", "Book", "Audit"], "reconciles",
                ["bank transactions", "expense reports", "invoices", "payroll runs"],
                ["bookkeeping", "reconciliation", "fraud-detection", "tax-returns"]),
    "sales": (["Lead", "Deal", "Pipe", "Prospect"], "qualifies",
              ["inbound leads", "B2B prospects", "CRM records", "demo requests"],
              ["lead-generation", "crm", "outreach", "sales-forecasting"]),
    "marketing": (["Brand", "Copy", "Reach", "Buzz"], "writes",
                  ["ad copy", "landing pages", "newsletters", "social posts"],
                  ["copywriting", "seo", "social-media", "email-marketing"]),
    "security": (["Shield", "Guard", "Sentinel", "Vault"], "scans",
                 ["web apps", "dependencies", "cloud accounts", "email traffic"],
                 ["vulnerability-scanning", "phishing-detection", "secret-scanning", "siem"]),
    "devops": (["Ops", "Deploy", "Kube", "Pager"], "troubleshoots",
               ["Kubernetes clusters", "CI pipelines", "deployments", "failing builds"],
               ["kubernetes", "ci", "observability", "incident-management"]),
    "data-analysis": (["Data", "Chart", "Insight", "Metric"], "analyses",
                      ["spreadsheets", "CSV exports", "warehouse tables", "experiment results"],
                      ["data-analysis", "charts", "forecasting", "statistics"]),
    "scheduling": (["Cal", "Slot", "Rota", "Agenda"], "schedules",
                   ["meetings", "staff shifts", "appointments", "interviews"],
                   ["meeting-scheduling", "calendar", "shift-planning", "reminders"]),
    "research": (["Scout", "Query", "Atlas", "Scholar"], "researches",
                 ["markets", "competitors", "papers", "patents"],
                 ["web-search", "research", "citations", "literature-review"]),
    "education": (["Tutor", "Learn", "Quiz", "Mentor"], "teaches",
                  ["maths", "languages", "programming", "exam topics"],
                  ["tutoring", "quiz-generation", "homework-help", "flashcards"]),
    "recruiting": (["Talent", "Hire", "Crew", "Recruit"], "screens",
                   ["CVs", "job applications", "candidate profiles", "applicants"],
                   ["resume-screening", "sourcing", "interview-scheduling", "job-descriptions"]),
    "ecommerce": (["Shop", "Cart", "Store", "Market"], "optimises",
                  ["product listings", "prices", "abandoned carts", "product images"],
                  ["product-descriptions", "price-monitoring", "cart-recovery", "catalog"]),
    "travel": (["Trip", "Voyage", "Jet", "Roam"], "plans",
               ["itineraries", "flights", "hotel stays", "rail journeys"],
               ["itinerary-planning", "flight-search", "hotel-booking", "travel"]),
    "content-moderation": (["Mod", "Safe", "Clean", "Filter"], "moderates",
                           ["user comments", "uploaded images", "chat rooms", "product reviews"],
                           ["moderation", "toxicity", "spam-detection", "nsfw-detection"]),
    "video": (["Clip", "Frame", "Reel", "Studio"], "edits",
              ["long videos", "webinars", "podcasts", "product demos"],
              ["video-editing", "subtitles", "highlights", "transcoding"]),
}
CATEGORIES = sorted(VOCABULARY)
NAME_SUFFIXES = ["", "Pro", "AI", "ly", "Flow", "Pilot", "Hub", "Bot", "Works", "Labs"]
AUDIENCES = ["small businesses", "enterprise teams", "agencies", "developers", "online shops", "public bodies"]
FEATURES = ["an API and webhooks", "batch processing", "SSO and audit logs", "a 99.9% uptime SLA",
            "custom glossaries", "human review on request", "a free trial"]
OPENINGS = [
    "{name} {does} {obj} for {audience}.",
    "Fast, accurate service that {does} {obj}.",
    "{name}: it {does} {obj} so your team does not have to.",
    "Built for {audience}, {name} {does} {obj}.",
]
CLOSINGS = ["Comes with {feature}.", "Trusted by {count} teams.", "Set up in minutes.", "Pay only for what you use."]
PRICES = {
    "per_request": ["0", "0.0005", "0.001", "0.002", "0.004", "0.005", "0.008", "0.01", "0.02", "0.05", "0.10", "0.50"],
    "per_minute": ["0", "0.002", "0.004", "0.006", "0.01", "0.02", "0.05"],
    "per_hour": ["0.05", "0.10", "0.30", "0.60", "1.00", "2.00", "5.00"],
    "hybrid": ["0.001", "0.01", "0.03", "0.10"],
}
MODELS = ["per_request"] * 13 + ["per_hour"] * 4 + ["per_minute"] * 2 + ["hybrid"]
BASE_FEES = ["0.20", "0.50", "1.00", "4.00"]
REGIONS = ["us-east"] * 5 + ["eu-west"] * 4 + ["us-west"] * 2 + ["eu-central"] * 2 + ["ap-northeast", "ap-south", None]
LANGUAGES = ["fr", "de", "es", "it", "pt", "nl", "pl", "ja", "zh", "ko", "hi", "ar", "ru", "tr", "sv"]


def _listing(rng: random.Random, number: int) -> dict[str, Any]:
    category = rng.choice(CATEGORIES)
    stems, does, objects, capabilities = VOCABULARY[category]
    name = f"{rng.choice(stems)}{rng.choice(NAME_SUFFIXES)}-{number:x}"
    slots = {"name": name, "does": does, "obj": rng.choice(objects), "audience": rng.choice(AUDIENCES),
             "feature": rng.choice(FEATURES), "count": rng.choice(["200+", "1,000+", "5,000+"])}
    sentences = [rng.choice(OPENINGS)] + rng.sample(CLOSINGS, rng.randrange(3))
    model = rng.choice(MODELS)
    pricing: dict[str, str] = {"model": model, "price": rng.choice(PRICES[model]), "currency": "USD"}
    if model == "hybrid":
        pricing["base_fee"] = rng.choice(BASE_FEES)
    listing: dict[str, Any] = {
        "id": f"S{number:07d}",
        "kind": "listing",
        "agent_name": name,
        "description": " ".join(sentences).format(**slots),
        "category": category,
        "capabilities": rng.sample(capabilities, rng.randint(2, len(capabilities))),
        "pricing": pricing,
    }
    region = rng.choice(REGIONS)
    if region:
        listing["region"] = region
    if rng.random() < 0.8:
        listing["languages"] = ["en", *rng.sample(LANGUAGES, rng.randrange(5))]
    return listing


def generate(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` synthetic listings, ids ``S0000001`` to ``S{n:07d}``, the same for the same ``n`` and ``seed``."""
    rng = random.Random(seed)
    return [_listing(rng, number) for number in range(1, n + 1)]
