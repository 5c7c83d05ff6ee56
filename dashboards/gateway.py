"""The dashboard's one door to DeployEx: the client facade, called on one worker thread.

The facade's calls are blocking thespian asks, so none may run on the tornado loop; every call
goes through `Gateway.call`, which runs it on a single dedicated thread (the facade and its
actor-system handle live and die on that thread) and awaits the result.

The dashboard must outlive a DeployEx that is down or restarting: when the actor system does not
answer, the facade is dropped and attached again (after a probe of the admin port) on the next
call, and `reachable`/`problem` say what the pages should show meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from deployex_actors.config import Config
from deployex_actors.errors import DeployexError, NoAnswer

if TYPE_CHECKING:
    from deployex_actors.client import DeployEx

log = logging.getLogger(__name__)
FACADE_TIMEOUT_S = 5.0
T = TypeVar("T")


class Unreachable(DeployexError):
    """The actor system did not answer (down, restarting, or too slow)."""


def attach_facade(config: Config) -> DeployEx:
    from deployex_actors.client import DeployEx

    return DeployEx.attach(config, timeout=FACADE_TIMEOUT_S)


class Gateway:
    def __init__(self, config: Config, attach: Callable[[Config], Any] = attach_facade) -> None:
        self.config = config
        self._attach = attach
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deployex-facade")
        self._facade: Any = None
        self.reachable = False
        self.problem: str | None = "connecting to DeployEx"
        self.answered_at: float | None = None

    async def call(self, action: Callable[[DeployEx], T]) -> T:
        """`action(facade)` on the worker thread, e.g. `call(lambda dx: dx.versions(app))`.

        Raises Unreachable when DeployEx did not answer, DeployexError when it answered with an
        error (an unknown app, a version that does not exist...)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, action)

    def _run(self, action: Callable[[DeployEx], T]) -> T:
        try:
            if self._facade is None:
                self._facade = self._attach(self.config)
            result = action(self._facade)
        except NoAnswer as exc:
            raise self._lost(str(exc)) from None
        except DeployexError:
            self._answered()
            raise
        except Exception as exc:  # the transport itself failed: attach again next time
            raise self._lost(f"{type(exc).__name__}: {exc}") from None
        self._answered()
        return result

    def _answered(self) -> None:
        self.reachable, self.problem, self.answered_at = True, None, time.time()

    def _lost(self, reason: str) -> Unreachable:
        if self.reachable:
            log.warning("DeployEx is not answering: %s", reason)
        self.reachable, self.problem, self._facade = False, reason, None
        return Unreachable(reason)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
