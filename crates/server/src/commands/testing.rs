//! Test commands, served only with `--enable-test-commands` (as mongod
//! serves them only with `enableTestCommands`): `configureFailPoint`.
use super::Ctx;
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};

/// `{configureFailPoint: name, mode, data}` on the admin database.
pub fn configure_fail_point(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    if !ctx.state.test_commands {
        return Err(CommandError::new(59, "CommandNotFound", "no such command: 'configureFailPoint'"));
    }
    if ctx.db != "admin" {
        return Err(CommandError::new(13, "Unauthorized", "configureFailPoint may only be run against the admin database."));
    }
    let name = match body.get("configureFailPoint") {
        Some(Bson::String(name)) => name.as_str(),
        _ => return Err(CommandError::type_mismatch("configureFailPoint must be the name of a fail point")),
    };
    let mode = body.get("mode").ok_or_else(|| CommandError::bad_value("missing 'mode'"))?;
    let data = match body.get("data") {
        None => Document::new(),
        Some(Bson::Document(d)) => d.clone(),
        Some(_) => return Err(CommandError::type_mismatch("'data' must be a document")),
    };
    let count = ctx.state.fail_points.configure(name, mode, data)?;
    Ok(doc! {"count": count, "ok": 1.0})
}
