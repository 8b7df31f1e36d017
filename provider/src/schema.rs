//! Schemas as we declare them: one description gives both the protocol schema Terraform reads and the cty object
//! type our codec needs, so the two can never disagree.

use std::collections::BTreeMap;

use usualstore_cty::Type;

use crate::proto::tfplugin6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// Optional in configuration; the provider fills it when the configuration leaves it null.
    OptionalComputed,
    Computed,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    pub presence: Presence,
    pub sensitive: bool,
    pub description: &'static str,
}

impl Attribute {
    pub fn new(
        name: &'static str,
        ty: Type,
        presence: Presence,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            ty,
            presence,
            sensitive: false,
            description,
        }
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub version: i64,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The cty object type of a whole state, plan or configuration value under this schema.
    pub fn object_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.to_owned(), a.ty.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    pub fn to_proto(&self) -> tfplugin6::Schema {
        let markdown = tfplugin6::StringKind::Markdown as i32;
        tfplugin6::Schema {
            version: self.version,
            block: Some(tfplugin6::schema::Block {
                version: self.version,
                description: self.description.to_owned(),
                description_kind: markdown,
                attributes: self
                    .attributes
                    .iter()
                    .map(|a| tfplugin6::schema::Attribute {
                        name: a.name.to_owned(),
                        r#type: a.ty.to_json(),
                        description: a.description.to_owned(),
                        description_kind: markdown,
                        required: a.presence == Presence::Required,
                        optional: matches!(
                            a.presence,
                            Presence::Optional | Presence::OptionalComputed
                        ),
                        computed: matches!(
                            a.presence,
                            Presence::Computed | Presence::OptionalComputed
                        ),
                        sensitive: a.sensitive,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        }
    }
}
