"""Market-data generator: random-walk trades for a set of symbols, produced to Kafka as JSON.

    python -m demo.generator --brokers HOST:PORT [--topic trades] [--rate 200] [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time

import orjson
from aiokafka import AIOKafkaProducer

SYMBOLS = {"AAPL": 190.0, "MSFT": 410.0, "GOOG": 140.0, "AMZN": 180.0, "TSLA": 240.0,
           "NVDA": 120.0, "META": 500.0, "ORCL": 125.0}


def trades(seed: int | None = None) -> TradeStream:
    """An endless stream of trade dicts (deterministic for a given seed)."""
    return TradeStream(random.Random(seed))


class TradeStream:
    """Random-walk prices; each call to next() gives one trade."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.prices = dict(SYMBOLS)

    def __iter__(self) -> TradeStream:
        return self

    def __next__(self) -> dict[str, object]:
        symbol = self.rng.choice(list(self.prices))
        price = max(1.0, self.prices[symbol] * (1 + self.rng.gauss(0, 0.002)))
        self.prices[symbol] = price
        return {
            "symbol": symbol,
            "price": round(price, 2),
            "quantity": self.rng.choice([10, 50, 100, 500, 1000, 2000, 5000]),
            "side": self.rng.choice(["BUY", "SELL"]),
            "ts": int(time.time() * 1000),
        }


async def produce(brokers: str, topic: str, rate: float, count: int | None) -> int:
    """Produce ``count`` trades (forever when None) at about ``rate`` per second."""
    producer = AIOKafkaProducer(bootstrap_servers=brokers, linger_ms=10)
    await producer.start()
    sent = 0
    stream = trades()
    started = time.monotonic()
    try:
        while count is None or sent < count:
            trade = next(stream)
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Produce random-walk trades to Kafka.")
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", default="trades")
    parser.add_argument("--rate", type=float, default=200.0, help="trades per second")
    parser.add_argument("--count", type=int, default=None, help="stop after this many trades")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(produce(args.brokers, args.topic, args.rate, args.count))


if __name__ == "__main__":
    main()
