//! The error codes the simulator answers with, as data: each code's HTTP status and ngrok's name
//! for it (ngrok's public error catalogue; UPSTREAM-NOTES.md), and the error every refusal carries.

/// A refusal the simulator can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No `Authorization` header.
    NoCredential,
    /// An `Authorization` header that is not the account's API key.
    BadCredential,
    /// The JSON body cannot be parsed.
    BadJson,
    /// A body on a request that takes none.
    BodyNotAllowed,
    /// A body without a Content-Type.
    MissingContentType,
    /// A body field the operation does not take.
    UnknownField,
    /// An `Ngrok-Version` other than 2.
    UnsupportedVersion,
    /// No `Ngrok-Version` header.
    MissingVersion,
    /// More simultaneous requests than the account may make.
    Concurrency,
    /// More requests per window than the account may make.
    RateLimited,
    /// A query parameter the operation does not take.
    UnknownQuery,
    /// `limit` outside 1 … 100.
    BadLimit,
    /// `certificate_id` and `certificate_management_policy` in one request.
    CertificateAndPolicy,
    /// The certificate of a domain with a management policy, changed directly.
    DetachPolicyFirst,
    /// A management policy on an ngrok-owned domain.
    PolicyOnNgrokDomain,
    /// An uploaded certificate on an ngrok-owned domain.
    CertificateOnNgrokDomain,
    /// Deleting the account's dev domain.
    DevDomain,
    /// An unparsable PEM.
    BadPem,
    /// A private key that does not match the certificate.
    KeyMismatch,
    /// A referenced certificate id that does not exist (its HTTP status is a guess).
    UnknownCertificate,
    /// Deleting a certificate ngrok manages.
    ManagedCertificate,
    /// An unknown id: ERR_NGROK_222, as an official client's recorded 404 shows.
    UnknownId,
    /// An unknown endpoint (no documented code).
    NotFound,
    /// Other bad input (no documented code).
    BadRequest,
    /// An injected fault (its status is the fault's).
    Fault,
}

impl Code {
    /// The HTTP status and the `error_code` of the error body.
    pub const fn spec(self) -> (u16, &'static str) {
        match self {
            Code::NoCredential => (401, "ERR_NGROK_200"),
            Code::BadCredential => (401, "ERR_NGROK_203"),
            Code::BodyNotAllowed => (400, "ERR_NGROK_211"),
            Code::BadJson => (400, "ERR_NGROK_213"),
            Code::UnknownField => (400, "ERR_NGROK_214"),
            Code::MissingContentType => (400, "ERR_NGROK_216"),
            Code::UnsupportedVersion => (400, "ERR_NGROK_217"),
            Code::MissingVersion => (400, "ERR_NGROK_218"),
            Code::Concurrency => (429, "ERR_NGROK_225"),
            Code::RateLimited => (429, "ERR_NGROK_226"),
            Code::UnknownQuery => (400, "ERR_NGROK_231"),
            Code::BadLimit => (400, "ERR_NGROK_233"),
            Code::CertificateAndPolicy => (400, "ERR_NGROK_434"),
            Code::DetachPolicyFirst => (400, "ERR_NGROK_436"),
            Code::PolicyOnNgrokDomain => (400, "ERR_NGROK_439"),
            Code::CertificateOnNgrokDomain => (400, "ERR_NGROK_440"),
            Code::DevDomain => (400, "ERR_NGROK_458"),
            Code::BadPem => (400, "ERR_NGROK_1920"),
            Code::KeyMismatch => (400, "ERR_NGROK_1923"),
            Code::UnknownCertificate => (404, "ERR_NGROK_1965"),
            Code::ManagedCertificate => (400, "ERR_NGROK_1966"),
            Code::UnknownId => (404, "ERR_NGROK_222"),
            Code::NotFound => (404, "ERR_NGROK_SIM_404"),
            Code::BadRequest => (400, "ERR_NGROK_SIM_400"),
            Code::Fault => (500, "ERR_NGROK_SIM_FAULT"),
        }
    }

    /// This refusal with a message.
    pub fn with(self, msg: impl Into<String>) -> SimError {
        let (status, code) = self.spec();
        SimError {
            status,
            code,
            msg: msg.into(),
        }
    }
}

/// An error the API answers with: status, a code, a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub msg: String,
}

impl SimError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Code::BadRequest.with(msg)
    }

    /// An unknown id of `kind`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Code::UnknownId.with(format!("The {kind} with ID '{id}' was not found."))
    }

    /// ERR_NGROK_214 for `field`, in ngrok's words.
    pub fn unknown_field(field: &str) -> Self {
        Code::UnknownField.with(format!(
            "The request parameter `{field}` is unknown and not expected."
        ))
    }
}
