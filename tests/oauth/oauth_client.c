/*
 * A libpq 18 client that logs in with an OAuth bearer token (SASL OAUTHBEARER), for
 * tests/oauth/test_oauth.py. libpq has no connection parameter for a token: a client answers
 * PQAUTHDATA_OAUTH_BEARER_TOKEN through the hook set with PQsetAuthDataHook.
 *
 *   EA_TOKEN=<token> oauth_client CONNINFO [SQL ...]
 *
 * Connects, runs each SQL statement and prints each result row, tab-separated. On a failed
 * connection or statement: the error on stderr and exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

static char *token;

static int
give_token(PGauthData type, PGconn *conn, void *data)
{
	PGoauthBearerRequest *request = data;

	if (type != PQAUTHDATA_OAUTH_BEARER_TOKEN)
		return 0;				/* libpq's default for anything else */
	request->token = token;		/* static: no cleanup callback needed */
	return 1;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;

	if (argc < 2 || (token = getenv("EA_TOKEN")) == NULL)
	{
		fprintf(stderr, "usage: EA_TOKEN=<token> %s CONNINFO [SQL ...]\n", argv[0]);
		return 2;
	}
	PQsetAuthDataHook(give_token);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	for (int i = 2; i < argc; i++)
	{
		PGresult   *res = PQexec(conn, argv[i]);
		ExecStatusType status = PQresultStatus(res);

		if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "%s", PQerrorMessage(conn));
			PQclear(res);
			PQfinish(conn);
			return 1;
		}
		for (int row = 0; row < PQntuples(res); row++)
			for (int col = 0; col < PQnfields(res); col++)
				printf("%s%s", PQgetisnull(res, row, col) ? "(null)" : PQgetvalue(res, row, col),
					   col + 1 < PQnfields(res) ? "\t" : "\n");
		PQclear(res);
	}
	PQfinish(conn);
	return 0;
}
