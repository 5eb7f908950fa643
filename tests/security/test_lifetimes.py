"""Where the session identity's lifetime is not simply "its transaction" or "its session" — two
places Postgres's own rules decide, proved on a live cluster and held to what the README's
lifetime table says:

- PREPARE TRANSACTION ends the transaction for the session that prepared it, exactly like COMMIT:
  a transaction-scope identity ends, and a session-scope identity (or a logout()) set in that
  transaction stays in the session — also when the prepared transaction is then rolled back
  with ROLLBACK PREPARED, which restores nothing in the session.
- A WITH HOLD cursor declared under an identity keeps the rows it read under that identity after
  the identity ends (COMMIT, logout()): Postgres computes them at COMMIT and FETCH hands them out
  until CLOSE or the end of the session.

As an ordinary login role (ea_app), against a table whose RLS policy is on current_user_id().
Run by scripts/test_major.sh on every major; alone:
PG_CONFIG=... python3 tests/security/test_lifetimes.py
"""

import psycopg

from test_security import README, SecurityCase, Session, mint, owned_docs
from electric_auth_test import main


def lifetime_row(event):
    """The README lifetime table's cells ('transaction', 'session') for the row whose event
    column starts with `event`."""
    table = README[README.index("**Lifetime.**"):README.index("**The RLS recipe.**")]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith(event):
            return cells[1], cells[2]
    raise AssertionError(f"the README's lifetime table has no row for {event}")


class PreparedTransactions(SecurityCase):
    """PREPARE TRANSACTION, then COMMIT PREPARED or ROLLBACK PREPARED (in the same session or
    another), under each scope."""

    CLUSTER = ("ea-sec-lifetimes", 54373, True)
    SERVER_OPTIONS = ("-c max_prepared_transactions=4", "-c electric_auth.session_scope=allow")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        owned_docs(cls.cluster, "id int PRIMARY KEY, owner_id text NOT NULL",
                   "SELECT n, CASE WHEN n <= 3 THEN 'alice' ELSE 'bob' END "
                   "FROM generate_series(1, 10) n")

    def whoami(self, s):
        return s.execute("SELECT electric_auth.current_user_id()").fetchone()[0]

    def visible(self, s):
        return s.execute("SELECT count(*) FROM public.docs").fetchone()[0]

    def prepare(self, s, gid, setup):
        """BEGIN, the statements of `setup` (each with its parameters), PREPARE TRANSACTION."""
        s.execute("BEGIN")
        for sql, *params in setup:
            s.execute(sql, *params)
        s.execute(f"PREPARE TRANSACTION '{gid}'")

    def finish(self, gid, how, session):
        """COMMIT PREPARED or ROLLBACK PREPARED, from `session` (the one that prepared it, or
        another of the same role)."""
        session.execute(f"{how} PREPARED '{gid}'")

    def test_the_readme_says_what_prepare_transaction_does(self):
        transaction, session = lifetime_row("`PREPARE TRANSACTION`")
        self.assertTrue(transaction.startswith("ends"), transaction)
        self.assertTrue(session.startswith("stays"), session)
        self.assertIn("`ROLLBACK PREPARED`", session)
        self.assertIn("`logout()`", session)

    def test_a_transaction_identity_ends_at_prepare(self):
        for how in ("COMMIT", "ROLLBACK"):
            with self.subTest(how=how):
                s = Session(self.cluster)
                try:
                    self.prepare(s, "ea_txn", [
                        ("SELECT electric_auth.authenticate(%s)", mint()),
                    ])
                    self.assertIsNone(self.whoami(s))
                    self.assertEqual(self.visible(s), 0)
                    self.finish("ea_txn", how, s)
                    self.assertIsNone(self.whoami(s))
                    self.assertEqual(self.visible(s), 0)
                finally:
                    s.close()

    def test_a_transaction_identity_over_a_session_one_gives_it_back_at_prepare(self):
        s = Session(self.cluster)
        try:
            s.execute("SELECT electric_auth.authenticate(%s, 'session')", mint())
            self.prepare(s, "ea_over", [
                ("SELECT electric_auth.authenticate(%s)", mint(sub="bob")),
            ])
            self.assertEqual(self.whoami(s), "alice")
            self.finish("ea_over", "ROLLBACK", s)
            self.assertEqual(self.whoami(s), "alice")
        finally:
            s.close()

    def test_a_session_identity_set_in_a_prepared_transaction_survives_its_rollback(self):
        # A plain ROLLBACK undoes it (the README's ROLLBACK row); ROLLBACK PREPARED does not.
        for where in ("same session", "another session"):
            with self.subTest(rolled_back_from=where):
                s, other = Session(self.cluster), Session(self.cluster)
                try:
                    s.execute("BEGIN")
                    s.execute("SELECT electric_auth.authenticate(%s, 'session')", mint())
                    s.execute("ROLLBACK")
                    self.assertIsNone(self.whoami(s))
                    self.prepare(s, "ea_session", [
                        ("SELECT electric_auth.authenticate(%s, 'session')", mint()),
                    ])
                    self.assertEqual(self.whoami(s), "alice")
                    self.finish("ea_session", "ROLLBACK",
                                s if where == "same session" else other)
                    self.assertEqual(self.whoami(s), "alice",
                                     "ROLLBACK PREPARED restores nothing in the session")
                    self.assertEqual(self.visible(s), 3)
                    self.assertIsNone(self.whoami(other), "the identity stays in its session")
                finally:
                    s.close()
                    other.close()

    def test_a_session_identity_set_in_a_prepared_transaction_stays_after_commit_prepared(self):
        s = Session(self.cluster)
        try:
            self.prepare(s, "ea_commit", [
                ("SELECT electric_auth.authenticate(%s, 'session')", mint()),
            ])
            self.assertEqual(self.whoami(s), "alice")
            self.finish("ea_commit", "COMMIT", s)
            self.assertEqual(self.whoami(s), "alice")
        finally:
            s.close()

    def test_a_logout_in_a_prepared_transaction_survives_its_rollback(self):
        s = Session(self.cluster)
        try:
            s.execute("SELECT electric_auth.authenticate(%s, 'session')", mint())
            self.prepare(s, "ea_logout", [("SELECT electric_auth.logout()",)])
            self.assertIsNone(self.whoami(s))
            self.finish("ea_logout", "ROLLBACK", s)
            self.assertIsNone(self.whoami(s), "the logout stays done")
            self.assertEqual(self.visible(s), 0)
        finally:
            s.close()


class HeldCursors(SecurityCase):
    """A WITH HOLD cursor keeps what it read under an identity after the identity ends."""

    CLUSTER = ("ea-sec-cursors", 54374, True)
    SERVER_OPTIONS = ("-c electric_auth.session_scope=allow",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        owned_docs(cls.cluster, "id int PRIMARY KEY, owner_id text NOT NULL",
                   "SELECT n, CASE WHEN n <= 3 THEN 'alice' ELSE 'bob' END "
                   "FROM generate_series(1, 10) n")

    def test_the_readme_says_what_a_held_cursor_keeps(self):
        transaction, session = lifetime_row("a `WITH HOLD` cursor")
        self.assertIn("FETCH", transaction)
        self.assertIn("the same", session)

    def fetch_all(self, s, cursor):
        return [r[0] for r in s.execute(f"FETCH ALL FROM {cursor}").fetchall()]

    def test_a_held_cursor_keeps_the_rows_read_under_a_transaction_identity(self):
        s = Session(self.cluster)
        try:
            s.execute("BEGIN")
            s.execute("SELECT electric_auth.authenticate(%s)", mint())
            s.execute("DECLARE held CURSOR WITH HOLD FOR "
                      "SELECT owner_id FROM public.docs ORDER BY id")
            s.execute("DECLARE plain CURSOR FOR SELECT owner_id FROM public.docs ORDER BY id")
            s.execute("COMMIT")
            self.assertIsNone(s.execute("SELECT electric_auth.current_user_id()").fetchone()[0])
            self.assertEqual(s.execute("SELECT count(*) FROM public.docs").fetchone()[0], 0)
            # The identity has ended, yet the held cursor still hands out alice's rows ...
            self.assertEqual(self.fetch_all(s, "held"), ["alice"] * 3)
            # ... while a cursor without HOLD ended with the transaction.
            with self.assertRaises(psycopg.errors.InvalidCursorName):
                s.execute("FETCH ALL FROM plain")
        finally:
            s.close()

    def test_a_held_cursor_outlives_logout_of_a_session_identity(self):
        s = Session(self.cluster)
        try:
            s.execute("SELECT electric_auth.authenticate(%s, 'session')", mint())
            s.execute("BEGIN")
            s.execute("DECLARE held CURSOR WITH HOLD FOR "
                      "SELECT owner_id FROM public.docs ORDER BY id")
            s.execute("COMMIT")
            s.execute("SELECT electric_auth.logout()")
            s.execute("SELECT electric_auth.authenticate(%s, 'session')", mint(sub="bob"))
            self.assertEqual(s.execute("SELECT count(*) FROM public.docs").fetchone()[0], 7)
            # After logout() and under bob: still alice's rows, until CLOSE.
            self.assertEqual(self.fetch_all(s, "held"), ["alice"] * 3)
            s.execute("CLOSE held")
            with self.assertRaises(psycopg.errors.InvalidCursorName):
                s.execute("FETCH ALL FROM held")
        finally:
            s.close()

    def test_discard_all_closes_held_cursors(self):
        s = Session(self.cluster)
        try:
            s.execute("BEGIN")
            s.execute("SELECT electric_auth.authenticate(%s)", mint())
            s.execute("DECLARE held CURSOR WITH HOLD FOR SELECT owner_id FROM public.docs")
            s.execute("COMMIT")
            s.execute("DISCARD ALL")
            with self.assertRaises(psycopg.errors.InvalidCursorName):
                s.execute("FETCH ALL FROM held")
        finally:
            s.close()


if __name__ == "__main__":
    main()
