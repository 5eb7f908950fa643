/*
 * PostgreSQL 18 only: the few fields of this connection's pg_hba.conf line that the OAuth
 * validator reads (src/identity/oauth.rs). pgrx 0.18 binds `Port` as an opaque type, so these accessors
 * are compiled by build.rs against the server's own headers (pg_config --includedir-server):
 * the compiler, not a hard-coded offset, knows where each field lies.
 */
#include "postgres.h"

#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"

/* This connection's pg_hba.conf line if its method is oauth, else NULL. */
static const HbaLine *
oauth_line(void)
{
	if (MyProcPort == NULL || MyProcPort->hba == NULL ||
		MyProcPort->hba->auth_method != uaOAuth)
		return NULL;
	return MyProcPort->hba;
}

/* 1 when the connection matched an oauth line, 0 otherwise. */
int
electric_auth_hba_is_oauth(void)
{
	return oauth_line() != NULL;
}

/* The line's issuer= (never NULL on an oauth line; NULL otherwise). */
const char *
electric_auth_hba_oauth_issuer(void)
{
	const HbaLine *line = oauth_line();

	return line ? line->oauth_issuer : NULL;
}

/* The line's scope= (NULL when absent or not an oauth line). */
const char *
electric_auth_hba_oauth_scope(void)
{
	const HbaLine *line = oauth_line();

	return line ? line->oauth_scope : NULL;
}

/* 1 when the line has delegate_ident_mapping=1, 0 otherwise. */
int
electric_auth_hba_oauth_delegates_ident_mapping(void)
{
	const HbaLine *line = oauth_line();

	return line ? line->oauth_skip_usermap : 0;
}

/* The PG_VERSION_NUM of the headers this was compiled against. */
int
electric_auth_hba_headers_version(void)
{
	return PG_VERSION_NUM;
}
