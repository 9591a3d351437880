//! Registry errors with Confluent's error codes and HTTP statuses.

/// A refusal as Confluent's Schema Registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {details}")]
    Incompatible { subject: String, details: String },
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel,
    #[error("Invalid mode. Valid values are READWRITE, READONLY and IMPORT")]
    InvalidMode,
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectNotSoftDeleted(String),
    #[error("Subject '{subject}' Version {version} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelNotConfigured(String),
    #[error("Subject {0} is in read-only mode")]
    ReadOnly(String),
    #[error("Subject {0} is not in import mode; a schema id or version can only be given in IMPORT mode")]
    NotImportMode(String),
    #[error("Schema id {0} already holds a different schema")]
    IdConflict(i32),
    #[error("Unrecognized field or malformed request: {0}")]
    BadRequest(String),
    #[error("Error while storing the schema: {0}")]
    Store(String),
}

impl RegistryError {
    /// Confluent's `error_code`.
    pub fn code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound(_) => 40402,
            RegistryError::SchemaNotFound(_) => 40403,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::SubjectLevelNotConfigured(_) => 40408,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel => 42203,
            RegistryError::InvalidMode => 42204,
            RegistryError::ReadOnly(_) | RegistryError::NotImportMode(_) => 42205,
            RegistryError::IdConflict(_) => 42207,
            RegistryError::BadRequest(_) => 400,
            RegistryError::Store(_) => 50001,
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> u16 {
        match self.code() {
            400 => 400,
            409 => 409,
            c if (40400..40500).contains(&c) => 404,
            c if (42200..42300).contains(&c) => 422,
            _ => 500,
        }
    }
}
