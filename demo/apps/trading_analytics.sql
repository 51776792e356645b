-- @app: trading_analytics
-- @version: 1.0.0
-- @description: Live market analytics over the 'trades' topic: candles, VWAP, volume, enrichment, spikes, big buys.
--
-- Input: topic 'trades', JSON {symbol, price, quantity, side, ts}; ts is the event time in epoch ms.
-- Reference data: instruments.csv (symbol, name, sector, exchange, currency) in the server's data dir.
-- Deployed as one unit (POST /apps): if any job fails validation, none is started.

-- The input, declared once: typed columns (values are cast on read) and ts as the event time.
-- ${TRADES_TOPIC:trades} is substituted at deploy time (POST /apps "variables"; default 'trades'),
-- so the same file runs against another topic, as the end-to-end test does.
CREATE OR REPLACE STREAM trades (symbol STRING, price DOUBLE, quantity INT, side STRING, ts BIGINT)
  WITH (KAFKA_TOPIC = '${TRADES_TOPIC:trades}', VALUE_FORMAT = 'JSON', TIMESTAMP = 'ts');

-- 1-minute candles per symbol. EMIT FINAL: one row per (symbol, minute), written when the watermark
-- (the newest event time seen) passes the minute's end plus 5 s of grace for late trades.
-- @name: ohlc_1m
CREATE STREAM ohlc_1m AS
SELECT symbol PRIMARY KEY,
       FIRST_VALUE(price) AS open,
       MAX(price) AS high,
       MIN(price) AS low,
       LAST_VALUE(price) AS close,
       SUM(quantity) AS volume,
       COUNT(*) AS trades
FROM trades
GROUP BY symbol
WINDOW TUMBLING(1m) GRACE PERIOD 5s
EMIT FINAL
WITH ('event.time.field' = 'ts');

-- Volume-weighted average price over the last 5 minutes, refreshed every minute (hopping window).
-- The event-time field comes from an annotation here, to show the other way of setting a property.
-- @name: vwap_5m
-- @property: event.time.field=ts
CREATE STREAM vwap_5m AS
SELECT symbol PRIMARY KEY,
       ROUND(SUM(price * quantity) / SUM(quantity), 4) AS vwap,
       SUM(quantity) AS volume,
       COUNT(*) AS trades
FROM trades
GROUP BY symbol
WINDOW HOPPING(5m, 1m) GRACE PERIOD 5s
EMIT FINAL;

-- Running totals per symbol since the start of the topic: an upsert per change, keyed by symbol,
-- so the topic (compacted, or read as a table) always holds the latest figures.
-- @name: symbol_volume
CREATE TABLE symbol_volume AS
SELECT symbol,
       COUNT(*) AS trades,
       SUM(quantity) AS volume,
       SUM(CASE WHEN side = 'BUY' THEN quantity ELSE 0 END) AS buy_volume,
       SUM(CASE WHEN side = 'SELL' THEN quantity ELSE 0 END) AS sell_volume,
       ROUND(SUM(price * quantity), 2) AS notional
FROM trades
GROUP BY symbol
EMIT CHANGES;

-- Every trade with its instrument's reference data (a stream-table join against a CSV file read
-- when the job starts). LEFT JOIN: a symbol missing from the file still flows, with NULL sector.
-- @name: enriched_trades
CREATE STREAM enriched_trades AS
SELECT t.symbol, i.name, i.sector, i.exchange, t.side, t.price, t.quantity,
       ROUND(t.price * t.quantity, 2) AS notional, t.ts
FROM trades t
LEFT JOIN instruments i ON t.symbol = i.symbol
WITH ('instruments.type' = 'file_source',
      'instruments.path' = 'instruments.csv',
      'instruments.format' = 'csv');

-- Notional traded per sector and exchange: the join and the aggregate in one job (upserts).
-- @name: sector_volume
CREATE TABLE sector_volume AS
SELECT i.sector, i.exchange,
       COUNT(*) AS trades,
       ROUND(SUM(t.price * t.quantity), 2) AS notional
FROM trades t
JOIN instruments i ON t.symbol = i.symbol
GROUP BY i.sector, i.exchange
EMIT CHANGES
WITH ('instruments.type' = 'file_source',
      'instruments.path' = 'instruments.csv',
      'instruments.format' = 'csv');

-- Trades more than 1 % away from the average of the symbol's previous 20 trades. The frame
-- stops at 1 PRECEDING so a trade is compared with the trades before it, not with itself.
-- @name: price_spikes
CREATE STREAM price_spikes AS
SELECT symbol, price,
       ROUND(AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING), 4) AS avg20,
       ROUND(100 * (price / AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) - 1), 3)
           AS move_pct,
       ts
FROM trades
WHERE ABS(price / AVG(price) OVER (PARTITION BY symbol ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING) - 1) > 0.01;

-- Large buy orders, filtered live (the walking skeleton's first job).
-- @name: big_buys
START JOB big_buys AS
SELECT symbol, price, quantity, price * quantity AS notional, ts
FROM trades
WHERE side = 'BUY' AND quantity >= 1000
WITH ('output.topic' = 'big_buys');
