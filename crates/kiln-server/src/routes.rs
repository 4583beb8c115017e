//! The route table: every route Kiln serves, with the permission it needs. Authorization
//! enforces this table deny-by-default; a route that is not here does not exist.

use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::{AppState, meta, mlflow, ui};

/// What a permission is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Experiment,
    Model,
    Endpoint,
    Pipeline,
    FeatureProject,
}

/// The permission a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Open to anyone who can reach the server (health checks, version).
    Public,
    Read(Resource),
    Use(Resource),
    Edit(Resource),
    Manage(Resource),
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Patch => MethodFilter::PATCH,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: String,
    pub permission: Permission,
}

/// The table being built, and the router it makes; `S` is the state its handlers share.
pub struct RouteTable<S = AppState> {
    router: Router<S>,
    specs: Vec<RouteSpec>,
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    pub(crate) fn new() -> Self {
        RouteTable { router: Router::new(), specs: Vec::new() }
    }

    /// Declares a route. A handler for the same path and method twice is a bug caught at start.
    pub fn route<H, T>(mut self, method: Method, path: &str, permission: Permission, handler: H) -> Self
    where
        H: axum::handler::Handler<T, S>,
        T: 'static,
    {
        let method_router: MethodRouter<S> = on(method.filter(), handler);
        self.router = self.router.route(path, method_router);
        self.specs.push(RouteSpec { method, path: path.to_string(), permission });
        self
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

/// Every route of the server.
pub fn table() -> RouteTable {
    let t = RouteTable::new();
    let t = meta::routes(t);
    let t = ui::routes(t);
    mlflow::routes(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once() {
        let t = table();
        let mut seen = std::collections::HashSet::new();
        for spec in t.specs() {
            assert!(seen.insert((spec.method, spec.path.clone())), "declared twice: {spec:?}");
        }
        // kiln server can mount the serving routes beside its own: none may clash.
        for spec in crate::serving::table(false).specs() {
            assert!(seen.insert((spec.method, spec.path.clone())), "serving clashes with the server: {spec:?}");
        }
    }

    #[test]
    fn writes_never_need_only_read() {
        for spec in table().specs() {
            let read_by_post = spec.path.ends_with("/search") || spec.path.ends_with("/get-latest-versions");
            if spec.method != Method::Get && spec.path.contains("/mlflow/") && !read_by_post {
                assert!(!matches!(spec.permission, Permission::Read(_) | Permission::Public), "{spec:?}");
            }
        }
    }
}
