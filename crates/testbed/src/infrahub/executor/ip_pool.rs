//! `InfrahubIPAddressPoolGetResource`: host addresses handed out from an IP address pool's
//! prefixes, the same one again for the same identifier.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::Exec;
use crate::graphql::Field;
use crate::infrahub::state::{Allocation, Node, Store};
use crate::util::ids::new_id;

impl Exec {
    /// `InfrahubIPAddressPoolGetResource`: the next free host address of the pool's
    /// `resources` (nodes with a `prefix` attribute such as `10.0.0.0/24`); the same
    /// `identifier` gets the same address again. The address is stored as a node of the
    /// pool's `default_address_type` (default `IpamIPAddress`) when that kind is served.
    pub(super) fn allocate_address(
        &self,
        state: &mut Store,
        branch: &str,
        field: &Field,
    ) -> Result<Value, String> {
        let data = self.arg(field, "data").unwrap_or(Value::Null);
        let Some(b) = state.branches.get(branch) else {
            return Err(format!("Branch: {branch} not found."));
        };
        let pools = b
            .nodes
            .get("CoreIPAddressPool")
            .map(Vec::as_slice)
            .unwrap_or_default();
        let pool = if let Some(id) = data.get("id").and_then(Value::as_str) {
            pools.iter().find(|p| p.id == id)
        } else if let Some(Value::Array(parts)) = data.get("hfid") {
            pools.iter().find(|p| {
                parts
                    .first()
                    .is_some_and(|w| p.attrs.get("name") == Some(w))
            })
        } else {
            None
        };
        let Some(pool) = pool.cloned() else {
            return Err("Unable to find the pool in the database.".into());
        };
        let identifier = data
            .get("identifier")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let key = (branch.to_owned(), pool.id.clone());
        let taken = state.allocations.entry(key.clone()).or_default();
        let existing = identifier
            .as_ref()
            .and_then(|i| taken.iter().find(|a| a.identifier.as_ref() == Some(i)))
            .cloned();
        let allocation = match existing {
            Some(allocation) => allocation,
            None => {
                let prefixes: Vec<String> = pool
                    .rels
                    .get("resources")
                    .into_iter()
                    .flatten()
                    .filter_map(|id| {
                        b.nodes
                            .values()
                            .flatten()
                            .find(|n| &n.id == id)
                            .and_then(|n| n.attrs.get("prefix"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .collect();
                let prefix_length = data.get("prefix_length").and_then(Value::as_u64);
                let used: Vec<&str> = taken.iter().map(|a| a.address.as_str()).collect();
                let address = prefixes
                    .iter()
                    .find_map(|p| next_free_address(p, prefix_length, &used))
                    .ok_or_else(|| {
                        format!("No more resources available in the pool {}", pool.id)
                    })?;
                let address_kind = pool
                    .attrs
                    .get("default_address_type")
                    .and_then(Value::as_str)
                    .unwrap_or("IpamIPAddress")
                    .to_owned();
                let allocation = Allocation {
                    identifier: identifier.clone(),
                    id: new_id(),
                    kind: address_kind,
                    address,
                };
                taken.push(allocation.clone());
                if self.kinds.contains_key(&allocation.kind) {
                    let mut attrs = Map::new();
                    attrs.insert("address".into(), json!(allocation.address));
                    if let Some(b) = state.branches.get_mut(branch) {
                        b.nodes
                            .entry(allocation.kind.clone())
                            .or_default()
                            .push(Node {
                                id: allocation.id.clone(),
                                attrs,
                                rels: BTreeMap::new(),
                            });
                    }
                }
                allocation
            }
        };
        let node = match json!({
            "id": allocation.id,
            "kind": allocation.kind,
            "display_label": allocation.address,
            "identifier": allocation.identifier,
            "branch": branch,
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let mut out = Map::new();
        for sub in &field.selection {
            let value = match sub.name.as_str() {
                "ok" => Value::Bool(true),
                "node" => self.project_flat(sub, &node, "PoolAllocatedNode"),
                _ => Value::String("IPAddressPoolGetResource".into()),
            };
            out.insert(sub.key().to_owned(), value);
        }
        Ok(Value::Object(out))
    }
}

/// The first host address of IPv4 `prefix` (`10.0.0.0/24`) not in `used`, written with
/// `prefix_length` (default: the prefix's own), e.g. `10.0.0.1/24`.
fn next_free_address(prefix: &str, prefix_length: Option<u64>, used: &[&str]) -> Option<String> {
    let (network, length) = prefix.split_once('/')?;
    let length: u32 = length.parse().ok().filter(|l| *l <= 32)?;
    let network: std::net::Ipv4Addr = network.parse().ok()?;
    let base = u32::from(network) & u32::MAX.checked_shl(32 - length).unwrap_or(0);
    let size = 1u64 << (32 - length);
    let (first, last) = if size > 2 {
        (1, size - 2)
    } else {
        (0, size - 1)
    };
    let shown = prefix_length.unwrap_or(u64::from(length));
    (first..=last.min(first + 65_535)).find_map(|offset| {
        let host = std::net::Ipv4Addr::from(base.wrapping_add(offset as u32));
        let host = host.to_string();
        let taken = used
            .iter()
            .any(|u| u.split('/').next() == Some(host.as_str()));
        (!taken).then(|| format!("{host}/{shown}"))
    })
}
