//! Resource families. Every family is a list of JSON objects with one shape of
//! create/list/get/update/delete; a `Family` says how it is keyed and what Keycloak answers
//! about it, and this file does the rest. What a family really does differently
//! (generated fields, passwords, the group tree) stays in that family's own code.

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::Value;

use super::rep::{Obj, merge, parse_object, str_field, values};
use super::reply::{Reply, bad_request, conflict, created, error, not_found, unserved};
use super::segments::encode_segment;
use crate::util::ids::new_id;
use crate::util::response::{empty, json};

/// The error texts of a family.
#[derive(Clone, Copy)]
pub(super) enum Wording {
    /// Keycloak's own texts, for the families it documents: the 400 when the unique field
    /// is missing, the 409 for a taken value (made from the value), the 404 `error`.
    Keycloak {
        missing: &'static str,
        taken: fn(&str) -> String,
        not_found: &'static str,
    },
    /// The fake's texts for the families served from the raw path, made from the name of
    /// the thing (`protocol mapper`, ...): `{what} {unique} is missing`,
    /// `{what} with {unique} {value} already exists`, `Could not find {what}`.
    Named(&'static str),
}

/// How one family of objects is keyed, and its error texts.
pub(super) struct Family {
    /// The field that names a member in its URL.
    pub(super) key: &'static str,
    /// The field no two members may share (409 otherwise); a new member must have it (400).
    pub(super) unique: &'static str,
    /// Fields an update leaves as they are.
    pub(super) fixed: &'static [&'static str],
    /// Its error texts.
    pub(super) wording: Wording,
}

impl Family {
    /// A family worded by the fake, `what` naming its members (`client scope`).
    pub(super) const fn named(
        what: &'static str,
        key: &'static str,
        unique: &'static str,
        fixed: &'static [&'static str],
    ) -> Self {
        Self {
            key,
            unique,
            fixed,
            wording: Wording::Named(what),
        }
    }

    /// The 400 for a new member without its unique field.
    pub(super) fn missing(&self) -> Response {
        match self.wording {
            Wording::Keycloak { missing, .. } => bad_request(missing),
            Wording::Named(what) => bad_request(&format!("{what} {} is missing", self.unique)),
        }
    }

    /// The 409 for a unique value another member has.
    pub(super) fn taken(&self, value: &str) -> Response {
        conflict(match self.wording {
            Wording::Keycloak { taken, .. } => taken(value),
            Wording::Named(what) => format!("{what} with {} {value} already exists", self.unique),
        })
    }

    /// The 404 for an unknown member.
    pub(super) fn not_found(&self) -> Response {
        match self.wording {
            Wording::Keycloak { not_found, .. } => error(StatusCode::NOT_FOUND, not_found),
            Wording::Named(what) => not_found(what),
        }
    }

    /// The member named `id` in its URL.
    pub(super) fn find<'a>(&self, items: &'a [Obj], id: &str) -> Option<&'a Obj> {
        items.iter().find(|o| str_field(o, self.key) == Some(id))
    }

    /// The member `id`, or this family's 404.
    pub(super) fn require<'a>(&self, items: &'a [Obj], id: &str) -> Result<&'a Obj, Response> {
        self.find(items, id).ok_or_else(|| self.not_found())
    }

    /// 409 if a member other than `except` (a key) already has `value` as its unique field.
    pub(super) fn check_free(
        &self,
        items: &[Obj],
        value: &str,
        except: Option<&str>,
    ) -> Result<(), Response> {
        let taken = items.iter().any(|o| {
            str_field(o, self.unique) == Some(value)
                && except.is_none_or(|id| str_field(o, self.key) != Some(id))
        });
        if taken {
            return Err(self.taken(value));
        }
        Ok(())
    }

    /// The unique value of a new member: 400 if it has none, 409 if another member has it.
    pub(super) fn claim(&self, items: &[Obj], rep: &Obj) -> Result<String, Response> {
        let value = str_field(rep, self.unique).ok_or_else(|| self.missing())?;
        self.check_free(items, value, None)?;
        Ok(value.to_owned())
    }

    /// `GET` of the member `id`.
    pub(super) fn get(&self, items: &[Obj], id: &str) -> Reply {
        let item = self.require(items, id)?;
        Ok(json(StatusCode::OK, &Value::Object(item.clone())))
    }

    /// Overlays `update` on the member `id`, keeping the unique field unique.
    pub(super) fn update(&self, items: &mut [Obj], id: &str, mut update: Obj) -> Reply {
        if let Some(value) = str_field(&update, self.unique) {
            self.check_free(items, value, Some(id))?;
        }
        let item = items
            .iter_mut()
            .find(|o| str_field(o, self.key) == Some(id))
            .ok_or_else(|| self.not_found())?;
        for field in self.fixed {
            update.remove(*field);
        }
        merge(item, update);
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// `DELETE` of the member `id`.
    pub(super) fn delete(&self, items: &mut Vec<Obj>, id: &str) -> Reply {
        let before = items.len();
        items.retain(|o| str_field(o, self.key) != Some(id));
        if items.len() == before {
            return Err(self.not_found());
        }
        Ok(empty(StatusCode::NO_CONTENT))
    }

    /// Adds `rep` to a family served from the raw path: `id` is generated for families keyed
    /// by it; the `Location` is `{here}/{key}`.
    pub(super) fn create(&self, items: &mut Vec<Obj>, mut rep: Obj, here: &str) -> Reply {
        self.claim(items, &rep)?;
        if self.key == "id" {
            rep.insert("id".into(), Value::String(new_id()));
        }
        let id = str_field(&rep, self.key).unwrap_or("").to_owned();
        items.push(rep);
        Ok(created(format!("{here}/{}", encode_segment(&id))))
    }

    /// Serves `GET`/`POST` on a raw-path family (at `here`, `tail` empty) and
    /// `GET`/`PUT`/`DELETE` on the member `tail` names; a longer `tail` is a path the family
    /// does not have (404).
    pub(super) fn serve(
        &self,
        items: &mut Vec<Obj>,
        method: &Method,
        tail: &[&str],
        body: &[u8],
        here: &str,
    ) -> Reply {
        match (method.as_str(), tail) {
            ("GET", []) => Ok(json(StatusCode::OK, &Value::Array(values(items.iter())))),
            ("POST", []) => self.create(items, parse_object(body)?, here),
            ("GET", [id]) => self.get(items, id),
            ("PUT", [id]) => self.update(items, id, parse_object(body)?),
            ("DELETE", [id]) => self.delete(items, id),
            _ => Err(unserved(tail, 1)),
        }
    }
}
