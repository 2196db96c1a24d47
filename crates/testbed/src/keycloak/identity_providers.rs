//! Identity providers and their mappers, served from the raw path.

use http::Method;

use super::families::{IDENTITY_PROVIDER_MAPPERS, IDENTITY_PROVIDERS};
use super::reply::{Reply, route_not_found};
use super::segments::encode_segment;
use super::state::Realm;

/// `/admin/realms/{realm}/identity-provider/instances[/{alias}[/mappers[/{id}]]]`, `more`
/// being what follows `instances`; `realm_url` is the realm's URL.
pub(super) fn serve(
    r: &mut Realm,
    method: &Method,
    more: &[&str],
    body: &[u8],
    realm_url: &str,
) -> Reply {
    match more {
        [] | [_] => {
            if let (&Method::DELETE, [alias]) = (method, more) {
                // An identity provider's mappers go with it.
                r.collections
                    .remove(&format!("identity-providers/{alias}/mappers"));
            }
            let here = format!("{realm_url}/identity-provider/instances");
            let idps = r.items_mut("identity-providers".into());
            IDENTITY_PROVIDERS.serve(idps, method, more, body, &here)
        }
        [alias, "mappers", tail @ ..] => {
            IDENTITY_PROVIDERS.require(r.items("identity-providers"), alias)?;
            let here = format!(
                "{realm_url}/identity-provider/instances/{}/mappers",
                encode_segment(alias)
            );
            let mappers = r.items_mut(format!("identity-providers/{alias}/mappers"));
            IDENTITY_PROVIDER_MAPPERS.serve(mappers, method, tail, body, &here)
        }
        _ => Err(route_not_found()),
    }
}
