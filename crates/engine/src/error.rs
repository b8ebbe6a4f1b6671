use thiserror::Error;

/// An error the engine reports to a client, carrying MongoDB's numeric code
/// and code name so drivers map it the way they would a real server's.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct EngineError {
    pub code: i32,
    pub code_name: &'static str,
    pub message: String,
}

impl EngineError {
    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        Self { code, code_name, message: message.into() }
    }
    /// A malformed query, update or pipeline (MongoDB code 2).
    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(2, "BadValue", message)
    }
    /// A stage, operator or expression the engine does not implement.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(115, "CommandNotSupported", format!("not supported by the embedded engine: {}", what.into()))
    }
    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", message)
    }
    /// An aggregation operator the engine does not know (code 168).
    pub fn invalid_operator(message: impl Into<String>) -> Self {
        Self::new(168, "InvalidPipelineOperator", message)
    }
    /// A MongoDB error identified only by its numeric "location" code (such
    /// errors have the code name `Location<code>` on a real server).
    pub fn location(code: i32, message: impl Into<String>) -> Self {
        Self::new(code, location_name(code), message)
    }
}

fn location_name(code: i32) -> &'static str {
    match code {
        16554 => "Location16554",
        16555 => "Location16555",
        16608 => "Location16608",
        16610 => "Location16610",
        16612 => "Location16612",
        16606 => "Location16606",
        16607 => "Location16607",
        16702 => "Location16702",
        16893 => "Location16893",
        16894 => "Location16894",
        16895 => "Location16895",
        16896 => "Location16896",
        18522 => "Location18522",
        17041 => "Location17041",
        17053 => "Location17053",
        28651 => "Location28651",
        28724 => "Location28724",
        28745 => "Location28745",
        28765 => "Location28765",
        31253 => "Location31253",
        31254 => "Location31254",
        34413 => "Location34413",
        34435 => "Location34435",
        40100 => "Location40100",
        40101 => "Location40101",
        40102 => "Location40102",
        40103 => "Location40103",
        40104 => "Location40104",
        40105 => "Location40105",
        40185 => "Location40185",
        40228 => "Location40228",
        40323 => "Location40323",
        40324 => "Location40324",
        40601 => "Location40601",
        40227 => "Location40227",
        40602 => "Location40602",
        50856 => "Location50856",
        50857 => "Location50857",
        50858 => "Location50858",
        51108 => "Location51108",
        5626500 => "Location5626500",
        5860400 => "Location5860400",
        5860401 => "Location5860401",
        _ => "Location",
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
