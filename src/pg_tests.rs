//! `#[pg_test]`s: behaviour that needs a live backend but is not visible as SQL output —
//! mostly the per-backend verifier cache. The SQL contract itself is tests/pg_regress.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use crate::verify::cache;
    use pgrx::prelude::*;

    const SECRET: &str = "an-hs256-test-secret-of-32-bytes";
    /// HS256 over {"sub":"pg-test-user","iat":1700000000,"exp":4102444800} with SECRET,
    /// minted by PyJWT (see scripts/fixtures/mint.py for the interop fixtures).
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwZy10ZXN0LXVzZXIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6NDEwMjQ0NDgwMH0.H_NotX_ZLFHsN2CTE4vKhLok4MugS1uUeiUrRz8Kenk";

    /// Like TOKEN, for {"sub":"pg-test-user-2",...}, minted by PyJWT.
    const TOKEN_2: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwZy10ZXN0LXVzZXItMiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.OhpeVpDlb1LxC6ISoOiLK0XMbRiv10DkGh0VTJCp4FM";

    fn configure_hs256(secret: &str) {
        Spi::run("SET electric_auth.mode = secure").unwrap();
        Spi::run("SET electric_auth.jwt_alg = 'HS256'").unwrap();
        Spi::run(&format!("SET electric_auth.jwt_key = '{secret}'")).unwrap();
    }

    fn user_id(token: &str) -> Option<String> {
        Spi::get_one_with_args::<String>("SELECT electric_auth.user_id($1)", &[token.into()])
            .unwrap()
    }

    #[pg_test]
    fn settings_have_the_spec_defaults() {
        let show = |name: &str| {
            Spi::get_one::<String>(&format!("SHOW {name}"))
                .unwrap()
                .unwrap()
        };
        assert_eq!(show("electric_auth.mode"), "secure");
        assert_eq!(show("electric_auth.jwt_alg"), "");
        assert_eq!(show("electric_auth.jwt_key_is_base64"), "off");
        assert_eq!(show("electric_auth.clock_drift"), "2s");
        let context = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_settings WHERE name LIKE 'electric_auth.%' AND context = 'superuser'",
        );
        assert_eq!(
            context,
            Ok(Some(14)),
            "the eight settings, electric_auth.session_scope, the refused-setting mark and the \
             four statistics and audit-log settings are PGC_SUSET"
        );
        assert_eq!(show("electric_auth.session_scope"), "refuse");
        // In an untampered session the mark is empty.
        assert_eq!(show("electric_auth.refused_setting"), "");
    }

    #[pg_test]
    fn the_key_is_parsed_once_not_per_call() {
        configure_hs256(SECRET);
        let before = cache::rebuilds();
        for _ in 0..50 {
            assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        }
        assert_eq!(cache::rebuilds(), before + 1);
        // Assigning the very same value again is not a change.
        Spi::run(&format!("SET electric_auth.jwt_key = '{SECRET}'")).unwrap();
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        assert_eq!(cache::rebuilds(), before + 1);
    }

    #[pg_test]
    fn a_changed_key_takes_effect_on_the_next_call() {
        configure_hs256(SECRET);
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        let before = cache::rebuilds();
        configure_hs256("another-secret-also-of-32-bytes!");
        let result = PgTryBuilder::new(|| user_id(TOKEN))
            .catch_others(|e| match e {
                pg_sys::panic::CaughtError::PostgresError(report) => {
                    Some(report.message().to_string())
                }
                _ => None,
            })
            .execute();
        assert_eq!(result.as_deref(), Some("Invalid token signature"));
        assert_eq!(cache::rebuilds(), before + 1);
    }

    #[pg_test]
    fn hs_tokens_are_not_remembered() {
        // The fast path verifies an HMAC token in less than the cache costs (issue 24).
        configure_hs256(SECRET);
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        assert_eq!(cache::cached_tokens(), 0);
    }

    #[pg_test]
    fn verified_tokens_are_remembered_until_any_setting_is_assigned() {
        // Insecure mode still uses the cache (as RS/ES/PS/EdDSA do); its tokens need no key.
        Spi::run("RESET electric_auth.jwt_alg").unwrap();
        Spi::run("RESET electric_auth.jwt_key").unwrap();
        Spi::run("SET electric_auth.mode = insecure").unwrap();
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        assert_eq!(user_id(TOKEN_2).as_deref(), Some("pg-test-user-2"));
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        assert_eq!(cache::cached_tokens(), 2);
        // Any assignment, even of the same value, drops them.
        Spi::run("SET electric_auth.clock_drift = 2").unwrap();
        assert_eq!(user_id(TOKEN).as_deref(), Some("pg-test-user"));
        assert_eq!(cache::cached_tokens(), 1);
        // Failures are never remembered.
        assert!(PgTryBuilder::new(|| user_id(&format!("{TOKEN}.extra")))
            .catch_others(|_| None)
            .execute()
            .is_none());
        assert_eq!(cache::cached_tokens(), 1);
    }

    #[pg_test]
    fn verify_returns_the_whole_payload() {
        configure_hs256(SECRET);
        let claims = Spi::get_one_with_args::<pgrx::JsonB>(
            "SELECT electric_auth.verify($1)",
            &[TOKEN.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            claims.0,
            serde_json::json!({"sub": "pg-test-user", "iat": 1700000000, "exp": 4102444800u64})
        );
    }

    #[pg_test]
    fn null_in_null_out() {
        assert_eq!(
            Spi::get_one::<String>("SELECT electric_auth.user_id(NULL)"),
            Ok(None)
        );
    }

    /// The varlena bytes of `payload` as `verify` returns it: built by the core, or `None`
    /// when the core leaves it to `jsonb_in`; and as `jsonb_in` makes it.
    fn built_and_read(payload: &[u8]) -> (Option<Vec<u8>>, Vec<u8>) {
        use crate::sql::payload_jsonb::PayloadJsonb;
        use pgrx::IntoDatum;
        let bytes = |datum: pg_sys::Datum| unsafe {
            pgrx::varlena::varlena_to_byte_slice(datum.cast_mut_ptr::<pg_sys::varlena>()).to_vec()
        };
        fn passed<'a>(
            payload: &'a [u8],
            jsonb: Option<&'a [u8]>,
        ) -> electric_auth_core::Passed<'a> {
            electric_auth_core::Passed {
                user_id: "u",
                payload,
                jsonb,
                issuer: None,
                iat: None,
                iss: None,
                jti: None,
            }
        }
        let built = electric_auth_core::jsonb_body(payload).map(|body| {
            // As the fast path hands it over, and as the cache's path leaves it to be built.
            let handed = bytes(
                PayloadJsonb::new(passed(payload, Some(&body)))
                    .unwrap()
                    .into_datum()
                    .unwrap(),
            );
            let left = bytes(
                PayloadJsonb::new(passed(payload, None))
                    .unwrap()
                    .into_datum()
                    .unwrap(),
            );
            assert_eq!(handed, left);
            left
        });
        let read = bytes(
            PayloadJsonb::from_text(payload)
                .unwrap()
                .into_datum()
                .unwrap(),
        );
        (built, read)
    }

    #[pg_test]
    fn verify_builds_the_same_jsonb_bytes_as_jsonb_in() {
        let many_keys: String = (0..70).map(|i| format!(r#""k{}":{i},"#, 69 - i)).collect();
        let many_items: String = (0..70).map(|i| format!("{},", i * 37 - 500)).collect();
        let mut payloads: Vec<String> = vec![
            r#"{"sub":"user-0","iat":1796185641,"exp":1796272051,"name":"Benchmark User","roles":["reader"]}"#.into(),
            r#"{}"#.into(),
            r#"{"a":{},"b":[],"c":[{}],"d":[[]],"e":{"f":{}}}"#.into(),
            r#"{"b":1,"a":2,"b":3,"aa":{"z":1,"y":[true,false,null],"z":"last"}}"#.into(),
            r#"{"n":[0,1,-1,9999,10000,-10000,20000,100000000,123456789012345,-999999999999999,10001,1000000000001]}"#.into(),
            r#"{"s":"José ünïcödé ✓ 𝄞","":"empty key","x":"","y":"a","yy":"ab","yyy":"abc"}"#.into(),
            r#"{"x":1,"pad":"a","n":5,"pad2":"abc","m":[1,"a",2,"ab",3,{"q":7}],"t":true}"#.into(),
            format!(r#"{{{many_keys}"last":[{many_items}0]}}"#),
            format!(r#"{{"deep":{}1{}}}"#, "[".repeat(14), "]".repeat(14)),
            " {\n \"sub\" : \"spaced\" ,\t\"iat\":1 } \n".into(),
        ];
        // Mutations of them, built or left to jsonb_in, never different.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"{}[]\",:0123456789- ab";
        for seed in payloads.clone() {
            for _ in 0..2000 {
                let mut json = seed.clone().into_bytes();
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % json.len() as u64) as usize;
                json[at] = alphabet[((state >> 32) % alphabet.len() as u64) as usize];
                if let Ok(text) = String::from_utf8(json) {
                    payloads.push(text);
                }
            }
        }
        let mut built_count = 0;
        for payload in &payloads {
            if payload.contains('\0') || serde_json::from_str::<serde_json::Value>(payload).is_err()
            {
                assert!(
                    electric_auth_core::jsonb_body(payload.as_bytes()).is_none(),
                    "{payload}"
                );
                continue;
            }
            let (built, read) = built_and_read(payload.as_bytes());
            if let Some(built) = built {
                assert_eq!(built, read, "{payload}");
                built_count += 1;
            }
        }
        assert!(built_count > 1000, "only {built_count} built");
    }
}
