//! Authentication: SCRAM-SHA-256 (RFC 5802 / RFC 7677) as MongoDB speaks it
//! through saslStart / saslContinue. Off unless users are configured; then
//! every command except the handshake needs an authenticated connection.
use crate::commands::Ctx;
use crate::error::{CmdResult, CommandError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const MECHANISM: &str = "SCRAM-SHA-256";
/// MongoDB's default iteration count for SCRAM-SHA-256.
const ITERATIONS: u32 = 15_000;

/// What the server keeps per user: never the password itself.
#[derive(Clone)]
struct Credential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

/// Configured users, keyed by "db.user".
#[derive(Default, Clone)]
pub struct Users {
    users: HashMap<String, Credential>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out.to_vec()
}

/// Shows how many users there are, never their keys.
impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({})", self.users.len())
    }
}

impl Users {
    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn contains(&self, db_user: &str) -> bool {
        self.users.contains_key(db_user)
    }

    /// The users, as (database, name), in name order.
    pub fn names(&self) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> =
            self.users.keys().filter_map(|k| k.split_once('.')).map(|(db, user)| (db.to_string(), user.to_string())).collect();
        names.sort();
        names
    }

    /// Adds a user that authenticates against database `db`.
    pub fn add(&mut self, db: &str, user: &str, password: &str) {
        let salt = rand::random::<[u8; 16]>().to_vec();
        let salted = salted_password(password, &salt, ITERATIONS);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key).to_vec();
        let server_key = hmac(&salted, b"Server Key");
        self.users.insert(format!("{db}.{user}"), Credential { salt, iterations: ITERATIONS, stored_key, server_key });
    }
}

/// A SCRAM conversation between server-first and client-final.
struct Conversation {
    db: String,
    user: String,
    nonce: String,
    auth_message_prefix: String,
    credential: Credential,
    /// Set once the proof is verified; a final empty saslContinue finishes.
    verified: bool,
}

/// Per-connection authentication state.
#[derive(Default)]
pub struct ConnAuth {
    user: Option<(String, String)>,
    conversation: Option<Box<Conversation>>,
    /// Came in through the store's owner-only socket: the file system
    /// already established who the client is.
    owner: bool,
}

impl ConnAuth {
    /// A connection through the store's owner-only socket.
    pub fn owner() -> ConnAuth {
        ConnAuth { owner: true, ..ConnAuth::default() }
    }
    pub fn is_authenticated(&self) -> bool {
        self.owner || self.user.is_some()
    }
    pub fn user(&self) -> Option<(String, String)> {
        self.user.clone()
    }
}

fn auth_failed() -> CommandError {
    CommandError::new(18, "AuthenticationFailed", "Authentication failed.")
}

fn payload(body: &Document) -> CmdResult<String> {
    let bytes = match body.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        Some(Bson::String(s)) => B64.decode(s).map_err(|_| CommandError::bad_value("payload is not base64"))?,
        _ => return Err(CommandError::bad_value("SASL payload missing")),
    };
    String::from_utf8(bytes).map_err(|_| CommandError::bad_value("SASL payload is not UTF-8"))
}

fn binary(s: &str) -> Binary {
    Binary { subtype: BinarySubtype::Generic, bytes: s.as_bytes().to_vec() }
}

/// `a=1,b=2` attribute lists of SCRAM messages.
fn attribute(message: &str, name: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(name) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

pub fn sasl_start(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    match body.get("mechanism") {
        Some(Bson::String(m)) if m == MECHANISM => {}
        other => {
            return Err(CommandError::new(334, "MechanismUnavailable", format!("Received authentication for mechanism {} which is not supported; use SCRAM-SHA-256", other.map(|m| m.to_string()).unwrap_or_default())));
        }
    }
    if !ctx.state.users.enabled() {
        return Err(auth_failed());
    }
    let client_first = payload(body)?;
    // gs2 header: "n,," (no channel binding) then the bare message.
    let bare = match client_first.strip_prefix("n,,").or_else(|| client_first.strip_prefix("y,,")) {
        Some(b) => b.to_string(),
        None => return Err(CommandError::bad_value("unsupported SCRAM gs2 header")),
    };
    let user = attribute(&bare, 'n').ok_or_else(|| CommandError::bad_value("SCRAM message without user name"))?.replace("=2C", ",").replace("=3D", "=");
    let client_nonce = attribute(&bare, 'r').ok_or_else(|| CommandError::bad_value("SCRAM message without nonce"))?;
    let db = ctx.db.clone();
    let Some(credential) = ctx.state.users.users.get(&format!("{db}.{user}")).cloned() else {
        return Err(auth_failed());
    };
    let nonce = format!("{client_nonce}{}", B64.encode(rand::random::<[u8; 24]>()));
    let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
    ctx.conn.auth.conversation = Some(Box::new(Conversation {
        db,
        user,
        nonce,
        auth_message_prefix: format!("{bare},{server_first}"),
        credential,
        verified: false,
    }));
    Ok(doc! {"conversationId": 1, "done": false, "payload": binary(&server_first), "ok": 1.0})
}

pub fn sasl_continue(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let Some(conv) = ctx.conn.auth.conversation.take() else {
        return Err(CommandError::new(17, "ProtocolError", "no SASL conversation in progress"));
    };
    if conv.verified {
        // The optional empty final round of the exchange.
        ctx.conn.auth.user = Some((conv.user.clone(), conv.db.clone()));
        return Ok(doc! {"conversationId": 1, "done": true, "payload": binary(""), "ok": 1.0});
    }
    let client_final = payload(body)?;
    let proof_b64 = attribute(&client_final, 'p').ok_or_else(auth_failed)?;
    if attribute(&client_final, 'r') != Some(conv.nonce.as_str()) {
        return Err(auth_failed());
    }
    let without_proof = client_final.rsplit_once(",p=").map(|(head, _)| head).ok_or_else(auth_failed)?;
    let auth_message = format!("{},{without_proof}", conv.auth_message_prefix);
    let proof = B64.decode(proof_b64).map_err(|_| auth_failed())?;
    let signature = hmac(&conv.credential.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Err(auth_failed());
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    if Sha256::digest(&client_key).as_slice() != conv.credential.stored_key.as_slice() {
        return Err(auth_failed());
    }
    let server_signature = hmac(&conv.credential.server_key, auth_message.as_bytes());
    let server_final = format!("v={}", B64.encode(server_signature));
    let skip_empty = body.get_document("options").ok().is_some_and(|o| crate::catalog::truthy(o.get("skipEmptyExchange")));
    if skip_empty {
        ctx.conn.auth.user = Some((conv.user.clone(), conv.db.clone()));
        return Ok(doc! {"conversationId": 1, "done": true, "payload": binary(&server_final), "ok": 1.0});
    }
    ctx.conn.auth.conversation = Some(Box::new(Conversation { verified: true, ..*conv }));
    Ok(doc! {"conversationId": 1, "done": false, "payload": binary(&server_final), "ok": 1.0})
}

pub fn logout(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    // Logging out ends a password login; an owner stays the owner.
    ctx.conn.auth = ConnAuth { owner: ctx.conn.auth.owner, ..ConnAuth::default() };
    Ok(doc! {"ok": 1.0})
}

/// `usersInfo`: the users of `--user` (all `root`: they reach every
/// database, as the store's owner does). `{usersInfo: 1}` lists the users of
/// the command's database; a name, a `{user, db}` document or a list of
/// them pick users.
pub fn users_info(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let wanted: Option<Vec<(String, String)>> = match body.get("usersInfo") {
        Some(Bson::Int32(1) | Bson::Int64(1) | Bson::Double(_)) => None,
        Some(one @ (Bson::String(_) | Bson::Document(_))) => Some(vec![user_name(ctx, one)?]),
        Some(Bson::Array(items)) => Some(items.iter().map(|i| user_name(ctx, i)).collect::<CmdResult<_>>()?),
        _ => return Err(CommandError::bad_value("usersInfo must be 1, a user name, a {user, db} document or a list of them")),
    };
    let users: Vec<Bson> = ctx
        .state
        .users
        .names()
        .into_iter()
        .filter(|(db, user)| match &wanted {
            None => db == &ctx.db,
            Some(list) => list.iter().any(|(d, u)| d == db && u == user),
        })
        .map(|(db, user)| {
            Bson::Document(doc! {
                "_id": format!("{db}.{user}"),
                "user": user,
                "db": db,
                "roles": [{"role": "root", "db": "admin"}],
                "mechanisms": ["SCRAM-SHA-256"],
            })
        })
        .collect();
    Ok(doc! {"users": users, "ok": 1.0})
}

fn user_name(ctx: &Ctx<'_>, v: &Bson) -> CmdResult<(String, String)> {
    match v {
        Bson::String(user) => Ok((ctx.db.clone(), user.clone())),
        Bson::Document(d) => match (d.get("user"), d.get("db")) {
            (Some(Bson::String(user)), Some(Bson::String(db))) => Ok((db.clone(), user.clone())),
            _ => Err(CommandError::bad_value("a user is named by {user: <name>, db: <database>}")),
        },
        _ => Err(CommandError::bad_value("a user is named by a string or {user, db}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse() {
        assert_eq!(attribute("n=user,r=abc", 'r'), Some("abc"));
        assert_eq!(attribute("c=biws,r=x,p=y=", 'p'), Some("y="));
        assert_eq!(attribute("n=user", 'r'), None);
    }

    #[test]
    fn rfc7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password("pencil", &salt, 4096);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key).to_vec();
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        assert_eq!(B64.encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let server_key = hmac(&salted, b"Server Key");
        assert_eq!(B64.encode(hmac(&server_key, auth_message.as_bytes())), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }
}
