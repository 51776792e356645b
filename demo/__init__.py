"""The trading demo: a market-data generator, analytics apps in SQL, and a script that runs it all."""
