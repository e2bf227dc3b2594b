//! The page shell every console page shares: head, navigation, sign-out form, and main.

use maud::{DOCTYPE, Markup, html};

use crate::session::{Principal, Session};

/// What the navigation shows: the signed-in principal and the session's CSRF token (for the
/// sign-out form). `None` before sign-in and on error pages without a session.
pub struct Nav<'a> {
    pub principal: &'a Principal,
    pub csrf_token: &'a str,
}

impl<'a> From<&'a Session> for Nav<'a> {
    fn from(session: &'a Session) -> Self {
        Self {
            principal: &session.principal,
            csrf_token: &session.csrf_token,
        }
    }
}

/// A whole page: `title` in the tab and as the heading, `body` below it.
pub fn page(title: &str, nav: Option<Nav<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Membrain" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header class="top" {
                    a class="brand" href="/console" { "Membrain" }
                    @if let Some(nav) = &nav {
                        nav {
                            @match nav.principal {
                                Principal::Tenant(_) => {
                                    a href="/console/memories" { "Memories" }
                                    a href="/console/search" { "Search" }
                                    a href="/console/series" { "Time series" }
                                }
                                Principal::Operator => {
                                    a href="/console/keys" { "Keys" }
                                }
                            }
                            a href="/console/network" { "Network" }
                        }
                        div class="who" {
                            @match nav.principal {
                                Principal::Tenant(tenant) => span { "Tenant " strong { (tenant.as_str()) } }
                                Principal::Operator => span { strong { "Operator" } }
                            }
                            form method="post" action="/console/logout" class="inline" {
                                input type="hidden" name="csrf_token" value=(nav.csrf_token);
                                button type="submit" id="sign-out" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}
