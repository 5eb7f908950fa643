/*
 * Prints the layout of PostgreSQL 18's OAuth validator structs (libpq/oauth.h) and of the two
 * members of Port and HbaLine that src/identity/oauth.rs reads, as "name=bytes" lines named like
 * src/identity/oauth.rs's LAYOUT. Compiled against the PG 18 server headers by tests/oauth/test_oauth.py.
 */
#include "postgres.h"

#include <stddef.h>

#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "libpq/oauth.h"

#undef printf					/* Postgres maps printf to its own; use libc's */
#include <stdio.h>

#define SHOW(expr) printf("%s=%zu\n", #expr, expr)

int
main(void)
{
	SHOW(sizeof(ValidatorModuleState));
	SHOW(offsetof(ValidatorModuleState, sversion));
	SHOW(offsetof(ValidatorModuleState, private_data));
	SHOW(sizeof(ValidatorModuleResult));
	SHOW(offsetof(ValidatorModuleResult, authorized));
	SHOW(offsetof(ValidatorModuleResult, authn_id));
	SHOW(sizeof(OAuthValidatorCallbacks));
	SHOW(offsetof(OAuthValidatorCallbacks, magic));
	SHOW(offsetof(OAuthValidatorCallbacks, startup_cb));
	SHOW(offsetof(OAuthValidatorCallbacks, shutdown_cb));
	SHOW(offsetof(OAuthValidatorCallbacks, validate_cb));
	SHOW(offsetof(Port, hba));
	SHOW(offsetof(HbaLine, auth_method));
	SHOW(offsetof(HbaLine, oauth_skip_usermap));
	printf("PG_OAUTH_VALIDATOR_MAGIC=%u\n", (unsigned) PG_OAUTH_VALIDATOR_MAGIC);
	printf("uaOAuth=%d\n", (int) uaOAuth);
	printf("sizeof(magic)=%zu\n", sizeof(((OAuthValidatorCallbacks *) 0)->magic));
	return 0;
}
