//! `[[login]]`: the company identity providers people sign in through
//! (OpenID Connect), resolved. The binary reads the client secret from its
//! file or environment variable; nothing here does I/O.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

/// How a person's Warden subject is formed from the provider's ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectForm {
    /// `user:<email>` (lowercased): readable in policies and the audit
    /// log; requires a verified email.
    Email,
    /// `user:<sub>`: the provider's stable identifier.
    Sub,
}

/// How Warden authenticates to the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderAuth {
    /// HTTP Basic (RFC 6749 §2.3.1), the OpenID Connect default.
    Basic,
    /// In the form body.
    Post,
}

/// The provider's client secret; never printed.
#[derive(Clone)]
pub struct ClientSecret(pub Zeroizing<String>);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// One identity provider people may sign in with.
#[derive(Debug, Clone)]
pub struct LoginProvider {
    /// Its name in URLs and the audit log (`/ui/login/<name>`).
    pub name: String,
    /// What the sign-in button says.
    pub display_name: String,
    /// Its issuer identifier; discovery is read from
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Warden's client id at the provider.
    pub client_id: String,
    /// Warden's client secret at the provider.
    pub client_secret: ClientSecret,
    /// How the secret is sent.
    pub auth: ProviderAuth,
    /// Scopes asked for (always including `openid`).
    pub scopes: Vec<String>,
    /// The ID token claim listing the person's groups.
    pub groups_claim: String,
    /// Provider group → Warden role; unmapped groups give nothing.
    pub roles: BTreeMap<String, String>,
    /// Roles every person signing in through it gets.
    pub default_roles: Vec<String>,
    /// Email domains allowed to sign in (empty: any).
    pub allowed_domains: Vec<String>,
    /// How the subject is formed.
    pub subject: SubjectForm,
}
