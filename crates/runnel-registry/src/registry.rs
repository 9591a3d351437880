//! The registry's state as a pure state machine: commands are validated
//! against it and produce events; events (replayed from `_schemas`, or
//! just written there) change it. No I/O here.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::compat::{check_avro, check_json, check_protobuf, Compatibility};
use crate::error::RegistryError;
use crate::schema::{Parsed, SchemaType};

/// A schema's named dependency on a version of another subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// Read/write mode of the registry or a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    Import,
}

impl FromStr for Mode {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Mode::ReadWrite),
            "READONLY" => Ok(Mode::ReadOnly),
            "IMPORT" => Ok(Mode::Import),
            _ => Err(RegistryError::InvalidMode),
        }
    }
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }
}

/// A change to the registry, as stored in `_schemas`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A version registered, or soft-deleted (`deleted`).
    Schema { subject: String, version: i32, id: i32, schema: String, schema_type: SchemaType, references: Vec<Reference>, deleted: bool },
    /// A version permanently deleted.
    SchemaGone { subject: String, version: i32 },
    /// A compatibility level set (`Some`) or removed (`None`).
    Config { subject: Option<String>, level: Option<Compatibility> },
    /// A mode set or removed.
    Mode { subject: Option<String>, mode: Option<Mode> },
}

/// One stored schema text, shared by every subject version that has it.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub schema: String,
    pub schema_type: SchemaType,
    pub references: Vec<Reference>,
    canonical: String,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: i32,
    pub deleted: bool,
}

/// A version looked up, with its schema.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub schema: StoredSchema,
}

/// Everything the registry knows.
#[derive(Debug, Clone)]
pub struct RegistryState {
    schemas: BTreeMap<i32, StoredSchema>,
    subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    global_level: Compatibility,
    levels: BTreeMap<String, Compatibility>,
    global_mode: Mode,
    modes: BTreeMap<String, Mode>,
}

impl Default for RegistryState {
    fn default() -> Self {
        RegistryState {
            schemas: BTreeMap::new(),
            subjects: BTreeMap::new(),
            global_level: Compatibility::Backward,
            levels: BTreeMap::new(),
            global_mode: Mode::ReadWrite,
            modes: BTreeMap::new(),
        }
    }
}

/// The id (and optionally version) a registration in IMPORT mode keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub id: i32,
    pub version: Option<i32>,
}

/// What a registration needs to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Registration {
    /// The subject already has this schema: answer with its id.
    Existing(i32),
    /// Store this event, then answer with its id.
    New(Event),
}

impl RegistryState {
    /// Applies one event (from replay, or after it was stored).
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Schema { subject, version, id, schema, schema_type, references, deleted } => {
                if !self.schemas.contains_key(&id) {
                    let canonical = self.parse(schema_type, &schema, &references).map(|p| p.canonical()).unwrap_or_else(|_| schema.clone());
                    self.schemas.insert(id, StoredSchema { schema, schema_type, references, canonical });
                }
                self.subjects.entry(subject).or_default().insert(version, VersionEntry { id, deleted });
            }
            Event::SchemaGone { subject, version } => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    versions.remove(&version);
                    if versions.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
            }
            Event::Config { subject: None, level } => self.global_level = level.unwrap_or(Compatibility::Backward),
            Event::Config { subject: Some(s), level: Some(l) } => {
                self.levels.insert(s, l);
            }
            Event::Config { subject: Some(s), level: None } => {
                self.levels.remove(&s);
            }
            Event::Mode { subject: None, mode } => self.global_mode = mode.unwrap_or(Mode::ReadWrite),
            Event::Mode { subject: Some(s), mode: Some(m) } => {
                self.modes.insert(s, m);
            }
            Event::Mode { subject: Some(s), mode: None } => {
                self.modes.remove(&s);
            }
        }
    }

    fn reference_texts(&self, references: &[Reference]) -> Result<Vec<String>, RegistryError> {
        references
            .iter()
            .map(|r| {
                let entry = self
                    .subjects
                    .get(&r.subject)
                    .and_then(|v| v.get(&r.version))
                    .ok_or_else(|| RegistryError::InvalidSchema(format!("reference {} to {} version {} does not exist", r.name, r.subject, r.version)))?;
                Ok(self.schemas[&entry.id].schema.clone())
            })
            .collect()
    }

    fn parse(&self, schema_type: SchemaType, text: &str, references: &[Reference]) -> Result<Parsed, RegistryError> {
        Parsed::parse(schema_type, text, &self.reference_texts(references)?)
    }

    /// The level in force for `subject`.
    pub fn level(&self, subject: Option<&str>) -> Compatibility {
        subject.and_then(|s| self.levels.get(s)).copied().unwrap_or(self.global_level)
    }

    /// The level set on `subject` itself, if any.
    pub fn subject_level(&self, subject: &str) -> Option<Compatibility> {
        self.levels.get(subject).copied()
    }

    pub fn mode(&self, subject: Option<&str>) -> Mode {
        subject.and_then(|s| self.modes.get(s)).copied().unwrap_or(self.global_mode)
    }

    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.modes.get(subject).copied()
    }

    /// Subjects with a live version (or any version, with `deleted`).
    pub fn subjects(&self, include_deleted: bool) -> Vec<String> {
        self.subjects.iter().filter(|(_, v)| include_deleted || v.values().any(|e| !e.deleted)).map(|(s, _)| s.clone()).collect()
    }

    fn live_versions(&self, subject: &str) -> Result<Vec<(i32, VersionEntry)>, RegistryError> {
        let versions = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let live: Vec<(i32, VersionEntry)> = versions.iter().filter(|(_, e)| !e.deleted).map(|(v, e)| (*v, *e)).collect();
        if live.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(live)
    }

    /// Version numbers of a subject.
    pub fn versions(&self, subject: &str, include_deleted: bool) -> Result<Vec<i32>, RegistryError> {
        if include_deleted {
            let versions = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
            return Ok(versions.keys().copied().collect());
        }
        Ok(self.live_versions(subject)?.into_iter().map(|(v, _)| v).collect())
    }

    /// Parses a version argument: a number or `latest` (or -1).
    pub fn resolve_version(&self, subject: &str, version: &str, include_deleted: bool) -> Result<i32, RegistryError> {
        if version == "latest" || version == "-1" {
            return self.versions(subject, include_deleted)?.last().copied().ok_or_else(|| RegistryError::VersionNotFound(version.to_string()));
        }
        let number: i32 = version.parse().ok().filter(|v| *v >= 1).ok_or_else(|| RegistryError::InvalidVersion(version.to_string()))?;
        Ok(number)
    }

    pub fn get_version(&self, subject: &str, version: &str, include_deleted: bool) -> Result<SubjectVersion, RegistryError> {
        let versions = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        if !include_deleted && versions.values().all(|e| e.deleted) {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let number = self.resolve_version(subject, version, include_deleted)?;
        let entry = versions.get(&number).filter(|e| include_deleted || !e.deleted).ok_or_else(|| RegistryError::VersionNotFound(number.to_string()))?;
        Ok(SubjectVersion { subject: subject.to_string(), version: number, id: entry.id, schema: self.schemas[&entry.id].clone() })
    }

    pub fn schema_by_id(&self, id: i32) -> Result<StoredSchema, RegistryError> {
        self.schemas.get(&id).cloned().ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))
    }

    /// Every (subject, version) using schema `id`.
    pub fn usages(&self, id: i32) -> Vec<(String, i32)> {
        self.subjects.iter().flat_map(|(s, vs)| vs.iter().filter(|(_, e)| e.id == id && !e.deleted).map(move |(v, _)| (s.clone(), *v))).collect()
    }

    /// Finds a live version of `subject` with the same schema.
    pub fn lookup(&self, subject: &str, schema_type: SchemaType, text: &str, references: &[Reference]) -> Result<SubjectVersion, RegistryError> {
        let parsed = self.parse(schema_type, text, references)?;
        let canonical = parsed.canonical();
        let live = self.live_versions(subject)?;
        live.into_iter()
            .find(|(_, e)| self.schemas[&e.id].canonical == canonical && self.schemas[&e.id].schema_type == schema_type)
            .map(|(v, e)| SubjectVersion { subject: subject.to_string(), version: v, id: e.id, schema: self.schemas[&e.id].clone() })
            .ok_or_else(|| RegistryError::SchemaNotFound(String::new()))
    }

    /// Incompatibilities of a schema with a subject's earlier versions at
    /// its level; with `against`, only that version is checked.
    pub fn compatibility(
        &self,
        subject: &str,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
        against: Option<i32>,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = self.parse(schema_type, text, references)?;
        let level = self.level(Some(subject));
        let earlier: Vec<(i32, StoredSchema)> = match (self.subjects.get(subject), against) {
            (None, _) => Vec::new(),
            (Some(versions), Some(v)) => {
                let entry = versions.get(&v).filter(|e| !e.deleted).ok_or_else(|| RegistryError::VersionNotFound(v.to_string()))?;
                vec![(v, self.schemas[&entry.id].clone())]
            }
            (Some(versions), None) => versions.iter().filter(|(_, e)| !e.deleted).map(|(v, e)| (*v, self.schemas[&e.id].clone())).collect(),
        };
        Ok(match parsed {
            Parsed::Avro(new) => {
                let olds: Vec<(i32, apache_avro::Schema)> = earlier
                    .iter()
                    .filter(|(_, s)| s.schema_type == SchemaType::Avro)
                    .filter_map(|(v, s)| match self.parse(SchemaType::Avro, &s.schema, &s.references) {
                        Ok(Parsed::Avro(schema)) => Some((*v, schema)),
                        _ => None,
                    })
                    .collect();
                check_avro(&new, &olds, level)
            }
            Parsed::Protobuf(new) => {
                let olds: Vec<(i32, prost_types::FileDescriptorProto)> = earlier
                    .iter()
                    .filter(|(_, s)| s.schema_type == SchemaType::Protobuf)
                    .filter_map(|(v, s)| match self.parse(SchemaType::Protobuf, &s.schema, &s.references) {
                        Ok(Parsed::Protobuf(file)) => Some((*v, *file)),
                        _ => None,
                    })
                    .collect();
                check_protobuf(&new, &olds, level)
            }
            Parsed::Json(new) => {
                let olds: Vec<(i32, serde_json::Value)> = earlier
                    .iter()
                    .filter(|(_, s)| s.schema_type == SchemaType::Json)
                    .filter_map(|(v, s)| serde_json::from_str(&s.schema).ok().map(|j| (*v, j)))
                    .collect();
                check_json(&new, &olds, level)
            }
        })
    }

    /// Validates a registration. Registering a schema the subject already
    /// has returns its id; a schema known under another subject keeps its
    /// id; otherwise the next id. In IMPORT mode the caller may fix the id
    /// and version (migrating from another registry), and compatibility is
    /// not checked.
    pub fn register(
        &self,
        subject: &str,
        schema_type: SchemaType,
        text: &str,
        references: Vec<Reference>,
        imported: Option<Imported>,
    ) -> Result<Registration, RegistryError> {
        let mode = self.mode(Some(subject));
        if mode == Mode::ReadOnly {
            return Err(RegistryError::ReadOnly(subject.to_string()));
        }
        if imported.is_some() && mode != Mode::Import {
            return Err(RegistryError::NotImportMode(subject.to_string()));
        }
        let parsed = self.parse(schema_type, text, &references)?;
        let canonical = parsed.canonical();
        if let Ok(existing) = self.lookup(subject, schema_type, text, &references) {
            if imported.is_none_or(|i| i.id == existing.id) {
                return Ok(Registration::Existing(existing.id));
            }
        }
        if mode != Mode::Import {
            let problems = self.compatibility(subject, schema_type, text, &references, None)?;
            if !problems.is_empty() {
                return Err(RegistryError::Incompatible { subject: subject.to_string(), details: problems.join("; ") });
            }
        }
        let same = |s: &StoredSchema| s.canonical == canonical && s.schema_type == schema_type && s.references == references;
        let id = match imported {
            Some(Imported { id, .. }) => match self.schemas.get(&id) {
                Some(existing) if !same(existing) => return Err(RegistryError::IdConflict(id)),
                _ => id,
            },
            None => self.schemas.iter().find(|(_, s)| same(s)).map(|(id, _)| *id).unwrap_or_else(|| self.schemas.keys().next_back().map_or(1, |id| id + 1)),
        };
        let next_version = self.subjects.get(subject).and_then(|v| v.keys().next_back()).map_or(1, |v| v + 1);
        let version = imported.and_then(|i| i.version).unwrap_or(next_version);
        Ok(Registration::New(Event::Schema { subject: subject.to_string(), version, id, schema: text.to_string(), schema_type, references, deleted: false }))
    }

    /// Events that delete a version: soft first, then (`permanent`) hard.
    pub fn delete_version(&self, subject: &str, version: &str, permanent: bool) -> Result<(i32, Event), RegistryError> {
        let found = self.get_version(subject, version, permanent)?;
        let entry = self.subjects[subject][&found.version];
        if permanent {
            if !entry.deleted {
                return Err(RegistryError::VersionNotSoftDeleted { subject: subject.to_string(), version: found.version });
            }
            return Ok((found.version, Event::SchemaGone { subject: subject.to_string(), version: found.version }));
        }
        Ok((
            found.version,
            Event::Schema {
                subject: subject.to_string(),
                version: found.version,
                id: found.id,
                schema: found.schema.schema,
                schema_type: found.schema.schema_type,
                references: found.schema.references,
                deleted: true,
            },
        ))
    }

    /// Events that delete every version of a subject.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> Result<(Vec<i32>, Vec<Event>), RegistryError> {
        let versions = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        if permanent {
            if versions.values().any(|e| !e.deleted) {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
            }
            let numbers: Vec<i32> = versions.keys().copied().collect();
            let events = numbers.iter().map(|v| Event::SchemaGone { subject: subject.to_string(), version: *v }).collect();
            return Ok((numbers, events));
        }
        let live = self.live_versions(subject)?;
        let mut numbers = Vec::new();
        let mut events = Vec::new();
        for (v, _) in live {
            let (n, e) = self.delete_version(subject, &v.to_string(), false)?;
            numbers.push(n);
            events.push(e);
        }
        Ok((numbers, events))
    }
}
