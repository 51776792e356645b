-- @app: trading_demo
-- @version: 0.1.0
-- @description: The walking-skeleton trading demo: large buy orders, filtered live.

-- @name: big_buys
START JOB big_buys AS
SELECT symbol, price, quantity, price * quantity AS notional
FROM trades
WHERE side = 'BUY' AND quantity >= 1000
WITH ('output.topic' = 'big_buys');
