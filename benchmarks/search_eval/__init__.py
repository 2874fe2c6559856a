"""The search and chat evaluation data of issue 29 (see README.md): the corpus, judged queries, chat intents and a
generator of synthetic listings for latency runs."""
