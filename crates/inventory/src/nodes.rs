//! Node operations: typed ones for every generated [`Kind`], auto-pagination as a stream, the
//! dynamic API for any kind (JSON), resource-pool allocation, and the batch helper.

use std::collections::BTreeMap;
use std::future::Future;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::client::InventoryClient;
use crate::error::Error;
use crate::node::{Kind, NodeRef, Page, Peer};

#[derive(serde::Deserialize)]
struct Edge<T> {
    node: T,
}

#[derive(serde::Deserialize)]
struct Paginated<T> {
    count: u64,
    #[serde(default = "Vec::new")]
    edges: Vec<Edge<T>>,
}

fn field<T: DeserializeOwned>(data: Value, name: &str) -> Result<T, Error> {
    let value = match data {
        Value::Object(mut map) => map.remove(name).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    serde_json::from_value(value).map_err(|e| Error::Decode(format!("{name}: {e}")))
}

/// One page of `K` nodes from the `data` of a list query (`{Kind: {count, edges: [{node}]}}`).
/// JSON of any other shape is an [`Error::Decode`], never a panic.
pub fn decode_page<K: Kind>(data: Value) -> Result<Page<K>, Error> {
    let page: Paginated<K> = field(data, K::INFO.kind)?;
    Ok(Page {
        count: page.count,
        items: page.edges.into_iter().map(|e| e.node).collect(),
    })
}

fn variables(filter: &impl Serialize) -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(filter) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(Error::InvalidInput(e.to_string())),
    }
}

#[derive(serde::Deserialize)]
struct Payload<T> {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default = "none")]
    object: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// A node allocated from a resource pool (`PoolAllocatedNode`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AllocatedNode {
    /// The allocated node's id.
    pub id: String,
    /// Its kind (`IpamIPAddress`).
    pub kind: String,
    /// Its display label (the address, `10.0.0.1/24`).
    pub display_label: String,
    /// The identifier it was allocated for (the same identifier gets the same node back).
    #[serde(default)]
    pub identifier: Option<String>,
    /// The branch it was allocated on.
    #[serde(default)]
    pub branch: Option<String>,
}

/// `InfrahubIPAddressPoolGetResource`: allocate an address from a `CoreIPAddressPool`.
pub const IP_ADDRESS_ALLOCATION_MUTATION: &str = "mutation IPAddressPoolGetResource($data: IPAddressPoolGetResourceInput!) {\n  InfrahubIPAddressPoolGetResource(data: $data) {\n    ok\n    node {\n      id\n      kind\n      display_label\n      identifier\n      branch\n    }\n  }\n}\n";

/// What the dynamic API selects of a node: attributes (their `value`) and relationships.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Attribute names.
    pub attributes: Vec<String>,
    /// Relationships of cardinality one.
    pub one: Vec<String>,
    /// Relationships of cardinality many.
    pub many: Vec<String>,
}

impl Selection {
    /// Selects these attributes.
    pub fn attributes(attributes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            attributes: attributes.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// What a generated kind's documents select.
    pub fn of(info: &crate::node::KindInfo) -> Self {
        let mut selection = Self::attributes(info.attributes.iter().copied());
        for relationship in info.relationships {
            match relationship.cardinality {
                crate::node::Cardinality::One => selection.one.push(relationship.name.to_owned()),
                crate::node::Cardinality::Many => selection.many.push(relationship.name.to_owned()),
            }
        }
        selection
    }

    fn render(&self) -> Result<String, Error> {
        let peer = "node { id display_label __typename }";
        let mut out = String::from("id hfid display_label");
        for name in &self.attributes {
            out.push_str(&format!(" {} {{ value }}", graphql_name(name)?));
        }
        for name in &self.one {
            out.push_str(&format!(" {} {{ {peer} }}", graphql_name(name)?));
        }
        for name in &self.many {
            out.push_str(&format!(
                " {} {{ count edges {{ {peer} }} }}",
                graphql_name(name)?
            ));
        }
        Ok(out)
    }
}

/// A node read through the dynamic API.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicNode {
    /// Its id.
    pub id: String,
    /// Its hfid.
    pub hfid: Option<Vec<String>>,
    /// Its display label.
    pub display_label: Option<String>,
    /// Selected attribute values by name.
    pub attributes: BTreeMap<String, Value>,
    /// Selected relationships' peers by name.
    pub relationships: BTreeMap<String, Vec<Peer>>,
}

impl DynamicNode {
    /// Reads one node of a dynamic answer. The node must be an object with a string `id`;
    /// the rest is read as far as it has the expected shape (an attribute that is not
    /// `{value: ...}` reads as `null`, a relationship that is not a peer as none), so JSON of
    /// any shape is a value or a decode error, never a panic.
    pub fn from_json(value: Value, selection: &Selection) -> Result<Self, Error> {
        let Value::Object(mut node) = value else {
            return Err(Error::Decode("a node that is not an object".into()));
        };
        let id = match node.remove("id") {
            Some(Value::String(id)) => id,
            _ => return Err(Error::Decode("a node without a string id".into())),
        };
        let hfid = node
            .remove("hfid")
            .and_then(|hfid| serde_json::from_value(hfid).ok());
        let display_label = match node.remove("display_label") {
            Some(Value::String(label)) => Some(label),
            _ => None,
        };
        let mut attributes = BTreeMap::new();
        for name in &selection.attributes {
            let value = member(node.get_mut(name.as_str()), "value");
            attributes.insert(name.clone(), value);
        }
        let mut relationships = BTreeMap::new();
        for name in &selection.one {
            let peer = member(node.get_mut(name.as_str()), "node");
            let peers =
                serde_json::from_value::<Peer>(peer).map_or_else(|_| Vec::new(), |p| vec![p]);
            relationships.insert(name.clone(), peers);
        }
        for name in &selection.many {
            let peers = match member(node.get_mut(name.as_str()), "edges") {
                Value::Array(edges) => edges
                    .into_iter()
                    .filter_map(|mut edge| {
                        let peer = member(Some(&mut edge), "node");
                        serde_json::from_value(peer).ok()
                    })
                    .collect(),
                _ => Vec::new(),
            };
            relationships.insert(name.clone(), peers);
        }
        Ok(Self {
            id,
            hfid,
            display_label,
            attributes,
            relationships,
        })
    }
}

/// `value[key]` taken out when `value` is an object holding it, else `null` (never the
/// panic of `IndexMut` on a string or a number).
fn member(value: Option<&mut Value>, key: &str) -> Value {
    value
        .and_then(Value::as_object_mut)
        .and_then(|object| object.remove(key))
        .unwrap_or(Value::Null)
}

/// The most pages [`InventoryClient::stream`] and [`InventoryClient::node_all`] fetch for one
/// call (10 000: half a million nodes at the default page size), so a server whose `count`
/// never ends cannot keep a call paging forever: needing more is an [`Error::Decode`].
pub const MAX_PAGES: u64 = 10_000;

/// Where paging stands: the next offset, the pages fetched, the ids of the last page.

#[derive(Default)]
struct Paging {
    offset: u64,
    pages: u64,
    last_ids: Vec<String>,
}

impl Paging {
    /// Records a page of `ids` (asked for `size` items, the server claiming `count` in all):
    /// whether to fetch another. A page that repeats the previous one, and paging past
    /// [`MAX_PAGES`], are [`Error::Decode`]s (the server is not paging); a short or empty page
    /// ends paging (nodes deleted meanwhile make `count` stale).
    fn next(&mut self, ids: Vec<String>, count: u64, size: u64) -> Result<bool, Error> {
        self.pages = self.pages.saturating_add(1);
        let fetched = ids.len() as u64;
        if fetched > 0 && ids == self.last_ids {
            return Err(Error::Decode(format!(
                "the page at offset {} repeats the previous page",
                self.offset
            )));
        }
        self.offset = self.offset.saturating_add(fetched);
        self.last_ids = ids;
        let more = fetched > 0 && fetched >= size && self.offset < count;
        if more && self.pages >= MAX_PAGES {
            return Err(Error::Decode(format!(
                "more than {MAX_PAGES} pages (the server claims {count} nodes)"
            )));
        }
        Ok(more)
    }
}

/// A GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`), so nothing can be injected into a document.
fn graphql_name(name: &str) -> Result<&str, Error> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if valid {
        Ok(name)
    } else {
        Err(Error::InvalidInput(format!(
            "{name:?} is not a GraphQL name"
        )))
    }
}

/// A JSON value as a GraphQL input literal.
fn literal(value: &Value, out: &mut String) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        // JSON string escapes are valid GraphQL string escapes.
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                literal(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(graphql_name(key)?);
                out.push_str(": ");
                literal(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

impl InventoryClient {
    /// One page of `K` nodes (generic form of the generated `{kind}_list`).
    pub async fn list<K: Kind>(
        &self,
        filter: &K::Filter,
        offset: u64,
        limit: u64,
    ) -> Result<Page<K>, Error> {
        let mut vars = variables(filter)?;
        vars.insert("offset".into(), json!(offset));
        vars.insert("limit".into(), json!(limit));
        let data = self
            .execute_graphql(K::LIST_QUERY, Some(Value::Object(vars)), None)
            .await?;
        decode_page::<K>(data)
    }

    /// Every `K` node matching `filter`, as a stream that fetches page after page
    /// (`pagination_size` nodes each) as it is consumed. It ends after the last page
    /// (fetched up to `count`), and also on a short or an empty page, whatever `count` the
    /// server claims; a page that repeats the previous one, or a page past [`MAX_PAGES`],
    /// ends it with an [`Error::Decode`].
    pub fn stream<K: Kind>(
        &self,
        filter: K::Filter,
    ) -> impl Stream<Item = Result<K, Error>> + Send + 'static {
        let client = self.clone();
        let size = self.pagination_size();
        stream::try_unfold(Some(Paging::default()), move |paging| {
            let client = client.clone();
            let filter = filter.clone();
            async move {
                let Some(mut paging) = paging else {
                    return Ok::<_, Error>(None);
                };
                let page = client.list::<K>(&filter, paging.offset, size).await?;
                let ids = page.items.iter().map(|item| item.id().to_owned()).collect();
                let more = paging.next(ids, page.count, size)?;
                Ok(Some((
                    stream::iter(page.items.into_iter().map(Ok::<K, Error>)),
                    more.then_some(paging),
                )))
            }
        })
        .try_flatten()
    }

    /// Every `K` node matching `filter` (the stream, collected).
    pub async fn all<K: Kind>(&self, filter: &K::Filter) -> Result<Vec<K>, Error> {
        self.stream::<K>(filter.clone()).try_collect().await
    }

    /// The `K` node with this id or hfid, if any.
    pub async fn get<K: Kind>(&self, node: NodeRef) -> Result<Option<K>, Error> {
        let vars = match &node {
            NodeRef::Id(id) => json!({ "ids": [id] }),
            NodeRef::Hfid(parts) => json!({ "hfid": parts }),
        };
        let data = self.execute_graphql(K::GET_QUERY, Some(vars), None).await?;
        let page: Paginated<K> = field(data, K::INFO.kind)?;
        Ok(page.edges.into_iter().next().map(|e| e.node))
    }

    /// How many `K` nodes match `filter`.
    pub async fn count<K: Kind>(&self, filter: &K::Filter) -> Result<u64, Error> {
        let vars = variables(filter)?;
        let data = self
            .execute_graphql(K::COUNT_QUERY, Some(Value::Object(vars)), None)
            .await?;
        #[derive(serde::Deserialize)]
        struct Count {
            count: u64,
        }
        Ok(field::<Count>(data, K::INFO.kind)?.count)
    }

    async fn mutate<K: Kind>(&self, document: &str, suffix: &str, data: Value) -> Result<K, Error> {
        let name = format!("{}{suffix}", K::INFO.kind);
        let result = self
            .execute_graphql(document, Some(json!({ "data": data })), None)
            .await?;
        let payload: Payload<K> = field(result, &name)?;
        match (payload.ok, payload.object) {
            (Some(false), _) => Err(Error::Decode(format!("{name} answered ok: false"))),
            (_, Some(object)) => Ok(object),
            (_, None) => Err(Error::Decode(format!("{name} returned no object"))),
        }
    }

    /// Creates a `K` node (generic form of `{kind}_create`).
    pub async fn create<K: Kind>(&self, data: &K::Create) -> Result<K, Error> {
        let data = serde_json::to_value(data).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.mutate::<K>(K::CREATE_MUTATION, "Create", data).await
    }

    /// Updates a `K` node (generic form of `{kind}_update`).
    pub async fn update<K: Kind>(&self, data: &K::Update) -> Result<K, Error> {
        let data = serde_json::to_value(data).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.mutate::<K>(K::UPDATE_MUTATION, "Update", data).await
    }

    /// Creates or updates a `K` node (generic form of `{kind}_upsert`).
    pub async fn upsert<K: Kind>(&self, data: &K::Upsert) -> Result<K, Error> {
        let data = serde_json::to_value(data).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.mutate::<K>(K::UPSERT_MUTATION, "Upsert", data).await
    }

    /// Deletes a `K` node (generic form of `{kind}_delete`).
    pub async fn delete<K: Kind>(&self, node: NodeRef) -> Result<(), Error> {
        let name = format!("{}Delete", K::INFO.kind);
        let result = self
            .execute_graphql(
                K::DELETE_MUTATION,
                Some(json!({ "data": node.to_json() })),
                None,
            )
            .await?;
        let payload: Payload<Value> = field(result, &name)?;
        if payload.ok == Some(false) {
            return Err(Error::Decode(format!("{name} answered ok: false")));
        }
        Ok(())
    }

    /// Dynamic API: one page of nodes of any `kind`, selecting `selection`, filtered by query
    /// arguments given as JSON (`{"name__value": "x"}`).
    pub async fn node_list(
        &self,
        kind: &str,
        selection: &Selection,
        filters: &Map<String, Value>,
        offset: u64,
        limit: u64,
    ) -> Result<Page<DynamicNode>, Error> {
        let mut args = format!("offset: {offset}, limit: {limit}");
        for (name, value) in filters {
            args.push_str(", ");
            args.push_str(graphql_name(name)?);
            args.push_str(": ");
            literal(value, &mut args)?;
        }
        let kind = graphql_name(kind)?;
        let query = format!(
            "query {{ {kind}({args}) {{ count edges {{ node {{ {} }} }} }} }}",
            selection.render()?
        );
        let data = self.execute_graphql(&query, None, None).await?;
        let page: Paginated<Value> = field(data, kind)?;
        let items = page
            .edges
            .into_iter()
            .map(|e| DynamicNode::from_json(e.node, selection))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            count: page.count,
            items,
        })
    }

    /// Dynamic API: every node of `kind` matching `filters`, page after page. Ends as
    /// [`stream`](crate::InventoryClient::stream) does: after `count` nodes or on a short or empty page; a
    /// repeated page or paging past [`MAX_PAGES`] pages is an [`Error::Decode`].
    pub async fn node_all(
        &self,
        kind: &str,
        selection: &Selection,
        filters: &Map<String, Value>,
    ) -> Result<Vec<DynamicNode>, Error> {
        let size = self.pagination_size();
        let mut paging = Paging::default();
        let mut out = Vec::new();
        loop {
            let page = self
                .node_list(kind, selection, filters, paging.offset, size)
                .await?;
            let ids = page.items.iter().map(|node| node.id.clone()).collect();
            let more = paging.next(ids, page.count, size)?;
            out.extend(page.items);
            if !more {
                return Ok(out);
            }
        }
    }

    /// Dynamic API: runs `{kind}{operation}(data: ...)` (`Create`, `Update`, `Upsert`) with
    /// `data` in Infrahub's input shape (`{"name": {"value": "x"}}`) and returns the node's id.
    pub async fn node_mutate(
        &self,
        kind: &str,
        operation: &str,
        data: &Value,
    ) -> Result<String, Error> {
        if !matches!(operation, "Create" | "Update" | "Upsert") {
            return Err(Error::InvalidInput(format!(
                "{operation:?} is not Create, Update or Upsert"
            )));
        }
        let name = format!("{}{operation}", graphql_name(kind)?);
        let mut text = String::new();
        literal(data, &mut text)?;
        let query = format!("mutation {{ {name}(data: {text}) {{ ok object {{ id }} }} }}");
        let result = self.execute_graphql(&query, None, None).await?;
        let payload: Payload<Value> = field(result, &name)?;
        payload
            .object
            .and_then(|o| o.get("id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| Error::Decode(format!("{name} returned no object id")))
    }

    /// Dynamic API: deletes the node of `kind` with this id or hfid.
    pub async fn node_delete(&self, kind: &str, node: NodeRef) -> Result<(), Error> {
        let name = format!("{}Delete", graphql_name(kind)?);
        let mut data = String::new();
        literal(&node.to_json(), &mut data)?;
        let query = format!("mutation {{ {name}(data: {data}) {{ ok }} }}");
        self.execute_graphql(&query, None, None).await?;
        Ok(())
    }

    /// Allocates an IP address from the `CoreIPAddressPool` `pool`. The same `identifier`
    /// always gets the same address back, so a retried sync never allocates twice.
    pub async fn allocate_ip_address(
        &self,
        pool: NodeRef,
        identifier: Option<&str>,
        prefix_length: Option<u32>,
    ) -> Result<AllocatedNode, Error> {
        let mut data = node_data(&pool);
        if let Some(identifier) = identifier {
            data.insert("identifier".into(), json!(identifier));
        }
        if let Some(length) = prefix_length {
            data.insert("prefix_length".into(), json!(length));
        }
        let result = self
            .execute_graphql(
                IP_ADDRESS_ALLOCATION_MUTATION,
                Some(json!({ "data": data })),
                None,
            )
            .await?;
        #[derive(serde::Deserialize)]
        struct Allocation {
            node: Option<AllocatedNode>,
        }
        field::<Allocation>(result, "InfrahubIPAddressPoolGetResource")?
            .node
            .ok_or_else(|| Error::Decode("the pool allocated nothing".into()))
    }

    /// Runs `tasks` (each gets a clone of this client), at most `max_concurrent_execution` at
    /// a time, and returns their results in the order given. Every request still passes the
    /// rate limiter, so a big batch is paced, not bursted.
    pub async fn batch<T, F, Fut>(
        &self,
        tasks: impl IntoIterator<Item = F>,
    ) -> Vec<Result<T, Error>>
    where
        F: FnOnce(InventoryClient) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        stream::iter(tasks)
            .map(|task| task(self.clone()))
            .buffered(self.max_concurrent())
            .collect()
            .await
    }
}

fn node_data(node: &NodeRef) -> Map<String, Value> {
    match node.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ids(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn paging_stops_whatever_count_claims() {
        // Full pages continue up to `count`.
        let mut paging = Paging::default();
        assert!(paging.next(ids(0..2), 5, 2).unwrap());
        assert!(paging.next(ids(2..4), 5, 2).unwrap());
        assert!(!paging.next(ids(4..5), 5, 2).unwrap());
        // A short page ends, whatever the count.
        let mut paging = Paging::default();
        assert!(!paging.next(ids(0..1), u64::MAX, 2).unwrap());
        // So does an empty one.
        let mut paging = Paging::default();
        assert!(!paging.next(Vec::new(), u64::MAX, 2).unwrap());
        // A repeated page is an error.
        let mut paging = Paging::default();
        assert!(paging.next(ids(0..2), u64::MAX, 2).unwrap());
        assert!(matches!(
            paging.next(ids(0..2), u64::MAX, 2),
            Err(Error::Decode(_))
        ));
        // The page cap is an error too.
        let mut paging = Paging::default();
        for page in 0..MAX_PAGES as u32 - 1 {
            assert!(
                paging
                    .next(ids(page * 2..page * 2 + 2), u64::MAX, 2)
                    .unwrap()
            );
        }
        let last = MAX_PAGES as u32 - 1;
        assert!(matches!(
            paging.next(ids(last * 2..last * 2 + 2), u64::MAX, 2),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn dynamic_nodes_of_any_shape_never_panic() {
        let selection = Selection {
            attributes: vec!["name".into(), "description".into()],
            one: vec!["parent".into()],
            many: vec!["tags".into()],
        };
        for value in [
            json!("a string"),
            json!(12),
            json!([1, 2]),
            json!(null),
            json!({}),
            json!({"id": 5}),
            json!({"id": ["x"]}),
        ] {
            assert!(
                DynamicNode::from_json(value.clone(), &selection).is_err(),
                "{value}"
            );
        }
        let node = DynamicNode::from_json(
            json!({
                "id": "n1",
                "hfid": "not a list",
                "display_label": 7,
                "name": "a string where an object is",
                "description": {"value": "kept"},
                "parent": 12,
                "tags": {"edges": "not an array"},
            }),
            &selection,
        )
        .unwrap();
        assert_eq!(node.id, "n1");
        assert_eq!(node.hfid, None);
        assert_eq!(node.display_label, None);
        assert_eq!(node.attributes["name"], Value::Null);
        assert_eq!(node.attributes["description"], json!("kept"));
        assert!(node.relationships["parent"].is_empty());
        assert!(node.relationships["tags"].is_empty());
        let node = DynamicNode::from_json(
            json!({"id": "n2", "tags": {"edges": [1, "x", {"node": 3}, {"node": {"id": "p"}}]}}),
            &selection,
        )
        .unwrap();
        assert_eq!(node.relationships["tags"].len(), 1);
    }

    #[test]
    fn literals_escape_strings_and_refuse_bad_names() {
        let mut out = String::new();
        literal(
            &json!({"name": {"value": "a\"b\n"}, "n": [1, true, null]}),
            &mut out,
        )
        .unwrap_or_default();
        assert_eq!(out, r#"{n: [1, true, null], name: {value: "a\"b\n"}}"#);
        let mut out = String::new();
        assert!(literal(&json!({"x) { y": 1}), &mut out).is_err());
        assert!(graphql_name("BuiltinTag").is_ok());
        assert!(graphql_name("1abc").is_err());
        assert!(graphql_name("").is_err());
    }
}
