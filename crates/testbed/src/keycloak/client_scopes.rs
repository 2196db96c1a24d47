//! Client scopes and their protocol mappers, served from the raw path.

use http::Method;

use super::families::{CLIENT_SCOPES, PROTOCOL_MAPPERS};
use super::reply::Reply;
use super::segments::encode_segment;
use super::state::Realm;

/// `/admin/realms/{realm}/client-scopes[/{id}]`; `realm_url` is the realm's URL.
pub(super) fn serve(
    r: &mut Realm,
    method: &Method,
    tail: &[&str],
    body: &[u8],
    realm_url: &str,
) -> Reply {
    let here = format!("{realm_url}/client-scopes");
    let scopes = r.items_mut("client-scopes".into());
    CLIENT_SCOPES.serve(scopes, method, tail, body, &here)
}

/// `/admin/realms/{realm}/client-scopes/{scope}/protocol-mappers/models[/{id}]`.
pub(super) fn serve_mappers(
    r: &mut Realm,
    method: &Method,
    scope: &str,
    tail: &[&str],
    body: &[u8],
    realm_url: &str,
) -> Reply {
    CLIENT_SCOPES.require(r.items("client-scopes"), scope)?;
    let here = format!(
        "{realm_url}/client-scopes/{}/protocol-mappers/models",
        encode_segment(scope)
    );
    let mappers = r.items_mut(format!("client-scopes/{scope}/protocol-mappers"));
    PROTOCOL_MAPPERS.serve(mappers, method, tail, body, &here)
}
