-- electric_auth 0.1.0 -> 0.2.0
--
-- Run by ALTER EXTENSION electric_auth UPDATE (complain if sourced in psql instead).
\echo Use "ALTER EXTENSION electric_auth UPDATE" to load this file. \quit

-- 0.2.0 builds for Postgres 15, 16, 17 and 18 and ships as packages; its SQL objects are those
-- of 0.1.0 (verify and user_id, the schema and its USAGE grant), so nothing changes here yet.
-- tests/upgrade/test_upgrade.py proves an upgraded catalog equals a fresh 0.2.0 install; every
-- later change to the SQL surface adds its statements to this file.
