//! The JWS algorithms, their key families and their names. Imports nothing of ours: config,
//! keys and errors all build on it.

use std::fmt;

/// The JWS algorithms: Electric's nine, then (beyond Electric) RSASSA-PSS and EdDSA (Ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    ES512,
    PS256,
    PS384,
    PS512,
    EdDSA,
}

/// What kind of key an algorithm verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmFamily {
    /// A shared secret (HS*); a JWK of `kty` `oct`.
    Hmac,
    /// An RSA public key (RS* and PS*); `kty` `RSA`.
    Rsa,
    /// An EC public key on the algorithm's curve (ES*); `kty` `EC`.
    Ec,
    /// An Ed25519 public key (EdDSA); `kty` `OKP`, `crv` `Ed25519`.
    Ed,
}

/// The algorithm names accepted by `electric_auth.jwt_alg`, in the order error messages list them.
pub const ALGORITHM_NAMES: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

const ALGORITHMS: [Algorithm; 13] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// `["HS256", "HS384", ...]`, as in Electric's message.
pub(crate) fn algorithm_list() -> String {
    let quoted: Vec<String> = ALGORITHM_NAMES.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Algorithm {
    /// Parses a name exactly as the spec requires: case-sensitive, one of [`ALGORITHM_NAMES`].
    pub fn from_name(name: &str) -> Option<Algorithm> {
        ALGORITHM_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| ALGORITHMS[i])
    }

    pub fn name(self) -> &'static str {
        let index = ALGORITHMS.iter().position(|a| *a == self);
        ALGORITHM_NAMES[index.expect("every algorithm is listed")]
    }

    pub fn family(self) -> AlgorithmFamily {
        use Algorithm::*;
        match self {
            HS256 | HS384 | HS512 => AlgorithmFamily::Hmac,
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => AlgorithmFamily::Rsa,
            ES256 | ES384 | ES512 => AlgorithmFamily::Ec,
            EdDSA => AlgorithmFamily::Ed,
        }
    }

    /// The SHA-2 output size in bits: 256, 384 or 512 (EdDSA: SHA-512, inside Ed25519).
    pub fn hash_bits(self) -> u32 {
        use Algorithm::*;
        match self {
            HS256 | RS256 | ES256 | PS256 => 256,
            HS384 | RS384 | ES384 | PS384 => 384,
            HS512 | RS512 | ES512 | PS512 | EdDSA => 512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
