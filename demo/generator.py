"""Market-data generator: random-walk trades for a set of symbols, produced to Kafka as JSON.

    python -m demo.generator --brokers HOST:PORT [--topic trades] [--rate 200] [--count N] [--seed S]
                             [--backfill-minutes M]

Each trade is ``{"symbol", "price", "quantity", "side", "ts"}`` keyed by symbol (so one symbol's
trades stay in order on one partition); ``ts`` is the event time in epoch milliseconds. Now and then
one trade prints 1.5-3 % off the market, which is what the demo's ``price_spikes`` job looks for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import time
from collections.abc import Iterator

import orjson
from aiokafka import AIOKafkaProducer

SYMBOLS = {"AAPL": 190.0, "MSFT": 410.0, "GOOG": 140.0, "AMZN": 180.0, "TSLA": 240.0,
           "NVDA": 120.0, "META": 500.0, "ORCL": 125.0}


# The ordinary walk moves a price by about 0.1 % per trade. Now and then one trade prints far off
# the market: rare, and large enough that a 20-trade average flags it while the walk seldom does.
VOLATILITY = 0.001
SHOCK_PROBABILITY = 0.004
SHOCK_SIZE = (0.015, 0.03)


def trades(seed: int | None = None, start_ms: int | None = None, step_ms: int = 100) -> TradeStream:
    """An endless stream of trade dicts.

    With ``start_ms`` the event times are fixed (``start_ms``, ``start_ms + step_ms``, ...) and, with
    a seed, the whole stream is reproducible, which is what tests need; without it ``ts`` is the wall
    clock at the moment each trade is made.
    """
    return TradeStream(random.Random(seed), start_ms, step_ms)


class TradeStream:
    """Random-walk prices; each call to next() gives one trade."""

    def __init__(self, rng: random.Random, start_ms: int | None = None, step_ms: int = 100) -> None:
        self.rng = rng
        self.prices = dict(SYMBOLS)
        self.start_ms = start_ms
        self.step_ms = step_ms
        self.count = 0

    def __iter__(self) -> TradeStream:
        return self

    def __next__(self) -> dict[str, object]:
        symbol = self.rng.choice(list(self.prices))
        price = max(1.0, self.prices[symbol] * (1 + self.rng.gauss(0, VOLATILITY)))
        self.prices[symbol] = price
        if self.rng.random() < SHOCK_PROBABILITY:
            # An off-market print (a fat finger, a block at a discount): this one trade is far from
            # the market, the walk itself carries on from where it was.
            price *= 1 + self.rng.choice([-1, 1]) * self.rng.uniform(*SHOCK_SIZE)
        # Fixed event times when a start was given (reproducible), else the wall clock.
        ts = int(time.time() * 1000) if self.start_ms is None else self.start_ms + self.count * self.step_ms
        self.count += 1
        return {
            "symbol": symbol,
            "price": round(price, 2),
            "quantity": self.rng.choice([10, 50, 100, 500, 1000, 2000, 5000]),
            "side": self.rng.choice(["BUY", "SELL"]),
            "ts": ts,
        }


async def produce(brokers: str, topic: str, rate: float, count: int | None,
                  stream: Iterator[dict[str, object]] | None = None) -> int:
    """Produce ``count`` trades (forever when None) at about ``rate`` per second.

    ``stream`` defaults to a wall-clock ``trades()``; a rate of ``inf`` produces as fast as possible.
    Returns once every trade is acknowledged.
    """
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=10)
    await producer.start()
    sent = 0
    stream = stream if stream is not None else trades()
    started = time.monotonic()
    try:
        while count is None or sent < count:
            trade = next(stream, None)
            if trade is None:  # a finite stream ran out
                break
            await producer.send(topic, orjson.dumps(trade), key=str(trade["symbol"]).encode())
            sent += 1
            # Pace against the wall clock so a slow loop catches up instead of drifting.
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def run(brokers: str, topic: str, rate: float, count: int | None, seed: int | None,
              backfill_minutes: float) -> None:
    """Backfill ``backfill_minutes`` of history (event times in the past, as fast as possible), say so
    on stdout, then keep producing live trades from the same random walk."""
    if backfill_minutes > 0:
        step_ms = max(1, round(1000 / rate))
        history = int(backfill_minutes * 60_000 / step_ms)
        stream = trades(seed, start_ms=int(time.time() * 1000) - history * step_ms, step_ms=step_ms)
        await produce(brokers, topic, math.inf, history, stream)
        stream.start_ms = None  # from here on each trade is stamped with the wall clock
    else:
        history, stream = 0, trades(seed)
    print(f"backfilled {history} trades into {topic}; producing live at {rate:g}/s", flush=True)
    await produce(brokers, topic, rate, count, stream)


def main() -> None:
    """Command-line entry point (``python -m demo.generator``)."""
    parser = argparse.ArgumentParser(description="Produce random-walk trades to Kafka.")
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", default="trades")
    parser.add_argument("--rate", type=float, default=200.0, help="trades per second")
    parser.add_argument("--count", type=int, default=None, help="stop after this many live trades")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one)")
    parser.add_argument("--backfill-minutes", type=float, default=0.0,
                        help="first produce this many minutes of history (at --rate trades per second)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.brokers, args.topic, args.rate, args.count, args.seed, args.backfill_minutes))


if __name__ == "__main__":
    main()
