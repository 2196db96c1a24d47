//! The kinds the fake Infrahub serves: each kind's attributes and relationships, and the
//! stock kinds served by default.

/// The schema of one node kind the fake Infrahub serves: its name (`BuiltinTag`), its
/// attributes (all text-like: values are stored as given, as JSON), its relationships, and
/// the filter clients look it up by besides its id (`default_filter`).
///
/// ```
/// use pacer_testbed::KindSchema;
///
/// let device = KindSchema::new("InfraDevice")
///     .unique("name") // required, unique, and the kind's human friendly id
///     .attribute("description")
///     .required("role")
///     .default_filter("name__value"); // what clients look a device up by
/// assert_eq!(device.kind(), "InfraDevice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSchema {
    pub(super) kind: String,
    pub(super) attributes: Vec<AttributeSchema>,
    pub(super) relationships: Vec<RelationshipSchema>,
    pub(super) default_filter: Option<String>,
}

/// The `default_filter` stock Infrahub (1.10) gives `BuiltinTag`.
pub(super) const BUILTIN_TAG_DEFAULT_FILTER: &str = "name__value";

/// A relationship of a kind: its name and cardinality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RelationshipSchema {
    pub(super) name: String,
    pub(super) many: bool,
}

/// An attribute of a kind: its name, and whether it is unique and optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct AttributeSchema {
    pub(super) name: String,
    pub(super) unique: bool,
    pub(super) optional: bool,
}

impl KindSchema {
    /// A kind named `kind` (`Namespace` + `Name` in CamelCase, e.g. `BuiltinTag`), with no
    /// attributes yet.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            attributes: Vec::new(),
            relationships: Vec::new(),
            default_filter: None,
        }
    }

    /// The filter `GET /api/schema` names as the kind's `default_filter` (an argument of its
    /// query, such as `name__value`): what clients search by when given a name instead of an
    /// id. None by default; `BuiltinTag` has Infrahub's.
    pub fn default_filter(mut self, filter: impl Into<String>) -> Self {
        self.default_filter = Some(filter.into());
        self
    }

    /// Adds a relationship of cardinality one (`{name} { node { id hfid display_label } }`
    /// in queries, `{name}: {id | hfid}` in inputs). Peers may be nodes of any kind.
    pub fn relationship_one(mut self, name: impl Into<String>) -> Self {
        self.relationships.push(RelationshipSchema {
            name: name.into(),
            many: false,
        });
        self
    }

    /// Adds a relationship of cardinality many (`{name} { count edges { node { ... } } }` in
    /// queries, `{name}: [{id | hfid}, ...]` in inputs).
    pub fn relationship_many(mut self, name: impl Into<String>) -> Self {
        self.relationships.push(RelationshipSchema {
            name: name.into(),
            many: true,
        });
        self
    }

    pub(super) fn rel(&self, name: &str) -> Option<&RelationshipSchema> {
        self.relationships.iter().find(|r| r.name == name)
    }

    /// Adds an optional attribute.
    pub fn attribute(mut self, name: impl Into<String>) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.into(),
            unique: false,
            optional: true,
        });
        self
    }

    /// Adds a required attribute.
    pub fn required(mut self, name: impl Into<String>) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.into(),
            unique: false,
            optional: false,
        });
        self
    }

    /// Adds a required, unique attribute; the first one is the kind's human friendly id
    /// (`hfid`) and what `Upsert` matches on when no id is given.
    pub fn unique(mut self, name: impl Into<String>) -> Self {
        self.attributes.push(AttributeSchema {
            name: name.into(),
            unique: true,
            optional: false,
        });
        self
    }

    /// The kind's name.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The kind's namespace and name: `BuiltinTag` is (`Builtin`, `Tag`).
    pub(super) fn split(&self) -> (&str, &str) {
        let at = self
            .kind
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_ascii_uppercase())
            .map_or(self.kind.len(), |(i, _)| i);
        self.kind.split_at(at)
    }

    pub(super) fn attr(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub(super) fn hfid_attr(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.unique)
            .map(|a| a.name.as_str())
    }

    /// The kinds a stock Infrahub has that the testbed serves by default: `BuiltinTag` (with
    /// its `default_filter`, `name__value`, as Infrahub 1.10 ships it), `CoreRepository` and
    /// `CoreStandardGroup`.
    pub fn defaults() -> Vec<KindSchema> {
        vec![
            KindSchema::new("BuiltinTag")
                .unique("name")
                .attribute("description")
                .default_filter(BUILTIN_TAG_DEFAULT_FILTER),
            KindSchema::new("CoreRepository")
                .unique("name")
                .required("location")
                .attribute("description")
                .attribute("default_branch")
                .attribute("commit"),
            KindSchema::new("CoreStandardGroup")
                .unique("name")
                .attribute("label")
                .attribute("description"),
        ]
    }
}
