-- Insecure mode: signatures are not checked; the user id and time claims still are.
-- The first call in a session warns that tokens are not verified.
SET electric_auth.mode = insecure;
SELECT electric_auth.user_id('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTY4NDg3ODEwM30.');
SELECT library, electric_auth.user_id(token) FROM fx.tokens WHERE scenario = 'unsigned' ORDER BY library;
SELECT electric_auth.user_id('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0d28tcGFydHMifQ') AS two_parts;
SELECT electric_auth.user_id(fx.token('standard', 'ES384', 'node')) AS any_signature;
SELECT fx.try_user_id(fx.token('expired', 'HS256', 'pyjwt'));
SELECT fx.try_user_id('a.e30.');
SELECT fx.try_user_id('a.b.c.d');
SELECT electric_auth.verify('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoiMSIsImlhdCI6MTY4NDg3ODEwM30.');
CALL fx.reset_settings();
