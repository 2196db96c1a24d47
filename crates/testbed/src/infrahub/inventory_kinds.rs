//! The kinds pacer-inventory's generated client expects (feature `inventory`).

use super::kinds::{BUILTIN_TAG_DEFAULT_FILTER, KindSchema};

/// The kinds matching pacer-inventory's generated ones, from their schema facts (`name` is
/// each kind's unique attribute and human-friendly id; `BuiltinTag` has stock Infrahub's
/// `default_filter`), plus the IPAM kinds an IP address pool
/// allocates from and into: what the examples and tests serve to the generated client.
pub fn generated_inventory_kinds() -> Vec<KindSchema> {
    use pacer_inventory::{Cardinality, KINDS};
    let mut kinds: Vec<KindSchema> = KINDS
        .iter()
        .map(|info| {
            let mut kind = KindSchema::new(info.kind);
            for attribute in info.attributes {
                kind = if *attribute == "name" {
                    kind.unique(*attribute)
                } else {
                    kind.attribute(*attribute)
                };
            }
            for relationship in info.relationships {
                kind = match relationship.cardinality {
                    Cardinality::One => kind.relationship_one(relationship.name),
                    Cardinality::Many => kind.relationship_many(relationship.name),
                };
            }
            // The SDL the client is generated from does not carry it; stock Infrahub does.
            if info.kind == "BuiltinTag" {
                kind = kind.default_filter(BUILTIN_TAG_DEFAULT_FILTER);
            }
            kind
        })
        .collect();
    kinds.push(KindSchema::new("IpamIPPrefix").unique("prefix"));
    kinds.push(KindSchema::new("IpamIPAddress").unique("address"));
    kinds
}
