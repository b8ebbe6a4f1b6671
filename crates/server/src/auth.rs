//! Authentication (SCRAM-SHA-256). Disabled unless users are configured.
use crate::commands::Ctx;
use crate::error::{CmdResult, CommandError};
use bson::{doc, Document};
use std::collections::HashMap;

/// Configured users, keyed by "db.user".
#[derive(Default)]
pub struct Users {
    users: HashMap<String, String>,
}

impl Users {
    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }
    pub fn contains(&self, db_user: &str) -> bool {
        self.users.contains_key(db_user)
    }
}

/// Per-connection authentication state.
#[derive(Default)]
pub struct ConnAuth {
    user: Option<(String, String)>,
}

impl ConnAuth {
    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }
    pub fn user(&self) -> Option<(String, String)> {
        self.user.clone()
    }
}

pub fn sasl_start(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Err(CommandError::new(334, "MechanismUnavailable", "authentication is not enabled on this server"))
}

pub fn sasl_continue(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Err(CommandError::new(17, "ProtocolError", "no SASL conversation in progress"))
}

pub fn logout(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    ctx.conn.auth = ConnAuth::default();
    Ok(doc! {"ok": 1.0})
}
