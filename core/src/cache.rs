//! A bounded memo of tokens whose signature and time-independent claims already verified.
//!
//! The same token is often checked many times in one backend (a per-row trigger over a batch,
//! an RLS policy over many rows). A hit skips the signature and the JSON parsing but still
//! re-checks `iat`/`nbf`/`exp` against the current time, so an entry can never outlive its
//! token. The owner must drop the cache (or build a new one) whenever any setting changes.
//!
//! Memory is bounded by a byte budget counting each token and its decoded claims; when an insert
//! would exceed it, the cache is emptied and starts over, so it holds at most the budget (or one
//! token, if that alone costs more). Only successes are remembered.

use crate::claims;
use crate::error::TokenError;
use crate::token::{VerifiedToken, Verifier};
use std::collections::HashMap;

/// The default budget: small enough that a backend's memory barely moves, large enough for
/// hundreds of typical tokens.
pub const DEFAULT_BUDGET_BYTES: usize = 256 * 1024;

/// Per-entry bookkeeping charged on top of the token and claims text.
const ENTRY_OVERHEAD: usize = 160;

#[derive(Debug)]
pub struct TokenCache {
    entries: HashMap<Box<str>, VerifiedToken>,
    used: usize,
    budget: usize,
}

impl TokenCache {
    /// An empty cache charging at most `budget` bytes (see the module notes).
    pub fn new(budget: usize) -> TokenCache {
        TokenCache {
            entries: HashMap::new(),
            used: 0,
            budget,
        }
    }

    /// Verifies `token` at `now` like [`Verifier::verify`], answering from the cache when the
    /// same token already verified. The time claims are checked again on every call. Always
    /// pass the same verifier: the cache does not know which one filled it.
    pub fn verify<'a>(
        &'a mut self,
        verifier: &Verifier,
        token: &str,
        now: i64,
    ) -> Result<&'a VerifiedToken, TokenError> {
        if self.entries.contains_key(token) {
            let hit = &self.entries[token];
            claims::check_time_claims(
                &hit.claims,
                now,
                verifier.config().clock_drift_of(hit.issuer),
            )?;
            return Ok(hit);
        }
        let verified = verifier.verify(token, now)?;
        // The payload's JSON text is 3/4 of its base64 and the decoded claims about twice that:
        // charging four times the token's length covers token, payload text and claims.
        let cost = 4 * token.len() + ENTRY_OVERHEAD;
        if self.used + cost > self.budget {
            self.entries.clear();
            self.used = 0;
        }
        self.used += cost;
        Ok(self.entries.entry(token.into()).or_insert(verified))
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes charged against the budget.
    pub fn used_bytes(&self) -> usize {
        self.used
    }
}
