//! The OpenAPI 3.1 document of the Backend API, built from the operation list the router is
//! built from. Object schemas describe exactly what `views` emits.

use serde_json::{json, Map, Value};

use super::Operation;

/// How one operation is documented.
pub struct Doc {
    tag: &'static str,
    summary: &'static str,
    operation_id: &'static str,
    params: Vec<Value>,
    query_names: Vec<&'static str>,
    body: Option<Value>,
    body_fields: Option<Vec<String>>,
    ok: Option<Value>,
}

impl Doc {
    pub fn new(tag: &'static str, summary: &'static str, operation_id: &'static str) -> Self {
        Self {
            tag,
            summary,
            operation_id,
            params: Vec::new(),
            query_names: Vec::new(),
            body: None,
            body_fields: None,
            ok: None,
        }
    }

    pub fn path(mut self, name: &'static str) -> Self {
        self.params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
        self
    }

    /// The query parameters this operation honours (every other is refused, see `params.rs`).
    pub fn query_names(&self) -> Vec<&'static str> {
        self.query_names.clone()
    }

    /// The fields of this operation's object body (of each object, for a list), which are all
    /// it honours; `None` when it documents no such body.
    pub fn body_names(&self) -> Option<Vec<String>> {
        self.body_fields.clone()
    }

    pub fn query(mut self, name: &'static str, schema: Value) -> Self {
        self.query_names.push(name);
        self.params.push(json!({"name": name, "in": "query", "required": false, "schema": schema}));
        self
    }

    /// A repeatable query key (`user_id=a&user_id=b`).
    pub fn query_list(mut self, name: &'static str) -> Self {
        self.query_names.push(name);
        self.params.push(json!({
            "name": name, "in": "query", "required": false, "style": "form", "explode": true,
            "schema": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
        }));
        self
    }

    pub fn paging(self) -> Self {
        self.query("limit", json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 10}))
            .query("offset", json!({"type": "integer", "minimum": 0, "default": 0}))
    }

    pub fn body(mut self, properties: Value, required: &[&str]) -> Self {
        self.body_fields = Some(field_names(&properties));
        self.body = Some(json!({
            "required": !required.is_empty(),
            "content": {"application/json": {"schema": {"type": "object", "properties": properties, "required": required}}},
        }));
        self
    }

    pub fn body_schema(mut self, schema: Value) -> Self {
        let object = schema.get("items").unwrap_or(&schema);
        self.body_fields = object.get("properties").map(field_names);
        self.body = Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}));
        self
    }

    /// 200 with a component schema.
    pub fn ok(self, component: &str) -> Self {
        self.ok_schema(reference(component))
    }

    pub fn ok_schema(mut self, schema: Value) -> Self {
        self.ok = Some(schema);
        self
    }

    fn to_json(&self) -> Value {
        let mut op = json!({
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": self.operation_id,
            "parameters": self.params,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {"schema": self.ok.clone().unwrap_or(json!({}))}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": reference("Errors")}}},
            },
        });
        if let (Some(body), Value::Object(map)) = (&self.body, &mut op) {
            map.insert("requestBody".into(), body.clone());
        }
        op
    }
}

fn field_names(properties: &Value) -> Vec<String> {
    properties.as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

pub fn reference(component: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{component}")})
}

pub fn list_of(component: &str) -> Value {
    json!({"type": "array", "items": reference(component)})
}

pub fn paginated_of(component: &str) -> Value {
    json!({"type": "object", "required": ["data", "total_count"], "properties": {"data": list_of(component), "total_count": {"type": "integer"}}})
}

pub fn document(ops: &[Operation]) -> Value {
    let mut paths = Map::new();
    for op in ops {
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        if let Value::Object(methods) = entry {
            methods.insert(op.method.as_str().to_ascii_lowercase(), op.doc.to_json());
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "latchkey Backend API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Clerk-compatible Backend API of latchkey. Authenticate with `Authorization: Bearer sk_live_…`. Timestamps are milliseconds since the Unix epoch.",
        },
        "servers": [{"url": "/"}],
        "security": [{"secretKey": []}],
        "paths": paths,
        "components": {"securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}}, "schemas": with_webhooks(schemas())},
    })
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn schemas() -> Value {
    let verification = json!({"oneOf": [{"type": "null"}, object(&["status", "strategy"], json!({
        "object": {"type": "string"}, "status": {"type": "string"}, "strategy": {"type": "string"},
        "attempts": nullable("integer"), "expire_at": nullable("integer"),
    }))]});
    let email = object(
        &["object", "id", "email_address", "verification", "linked_to", "created_at", "updated_at"],
        json!({
            "object": {"const": "email_address"}, "id": {"type": "string"}, "email_address": {"type": "string"},
            "reserved": {"type": "boolean"}, "verification": verification, "linked_to": {"type": "array"},
            "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let phone = object(
        &["object", "id", "phone_number", "verification", "linked_to", "created_at", "updated_at"],
        json!({
            "object": {"const": "phone_number"}, "id": {"type": "string"}, "phone_number": {"type": "string"},
            "reserved_for_second_factor": {"type": "boolean"}, "default_second_factor": {"type": "boolean"},
            "reserved": {"type": "boolean"}, "verification": verification, "linked_to": {"type": "array"},
            "backup_codes": {"type": ["array", "null"]}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let user = object(
        &[
            "object",
            "id",
            "email_addresses",
            "phone_numbers",
            "public_metadata",
            "private_metadata",
            "unsafe_metadata",
            "banned",
            "locked",
            "created_at",
            "updated_at",
        ],
        json!({
            "object": {"const": "user"}, "id": {"type": "string"}, "external_id": nullable("string"),
            "username": nullable("string"), "first_name": nullable("string"), "last_name": nullable("string"),
            "image_url": {"type": "string"}, "has_image": {"type": "boolean"},
            "primary_email_address_id": nullable("string"), "primary_phone_number_id": nullable("string"),
            "primary_web3_wallet_id": {"type": "null"}, "password_enabled": {"type": "boolean"},
            "two_factor_enabled": {"type": "boolean"}, "totp_enabled": {"type": "boolean"}, "backup_code_enabled": {"type": "boolean"},
            "email_addresses": list_of("EmailAddress"), "phone_numbers": list_of("PhoneNumber"),
            "web3_wallets": {"type": "array"}, "passkeys": {"type": "array"}, "external_accounts": {"type": "array"},
            "saml_accounts": {"type": "array"}, "enterprise_accounts": {"type": "array"},
            "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"}, "unsafe_metadata": {"type": "object"},
            "banned": {"type": "boolean"}, "locked": {"type": "boolean"}, "deprovisioned": {"type": "boolean"},
            "lockout_expires_in_seconds": nullable("integer"), "verification_attempts_remaining": nullable("integer"),
            "last_sign_in_at": nullable("integer"), "last_active_at": nullable("integer"), "legal_accepted_at": nullable("integer"),
            "password_last_updated_at": nullable("integer"), "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
            "delete_self_enabled": {"type": "boolean"}, "create_organization_enabled": {"type": "boolean"},
            "create_organizations_limit": nullable("integer"),
        }),
    );
    let session = object(
        &[
            "object",
            "id",
            "client_id",
            "user_id",
            "status",
            "last_active_at",
            "expire_at",
            "abandon_at",
            "created_at",
            "updated_at",
        ],
        json!({
            "object": {"const": "session"}, "id": {"type": "string"}, "client_id": {"type": "string"}, "user_id": {"type": "string"},
            "status": {"enum": ["active", "revoked", "ended", "expired", "removed", "abandoned", "replaced", "pending"]},
            "last_active_organization_id": nullable("string"), "actor": {"type": ["object", "null"]},
            "last_active_at": {"type": "integer"}, "expire_at": {"type": "integer"}, "abandon_at": {"type": "integer"},
            "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
            "latest_activity": {
                "type": ["object", "null"], "required": ["object", "id", "is_mobile"],
                "properties": {
                    "object": {"const": "session_activity"}, "id": {"type": "string"}, "is_mobile": {"type": "boolean"},
                    "device_type": {"type": "string"}, "browser_name": {"type": "string"}, "browser_version": {"type": "string"},
                    "ip_address": {"type": "string"}, "city": {"type": "string"}, "country": {"type": "string"},
                },
            },
        }),
    );
    let template = object(
        &[
            "object",
            "id",
            "name",
            "claims",
            "lifetime",
            "allowed_clock_skew",
            "custom_signing_key",
            "signing_algorithm",
            "created_at",
            "updated_at",
        ],
        json!({
            "object": {"const": "jwt_template"}, "id": {"type": "string"}, "name": {"type": "string"}, "claims": {"type": "object"},
            "lifetime": {"type": "integer"}, "allowed_clock_skew": {"type": "integer"}, "custom_signing_key": {"type": "boolean"},
            "signing_algorithm": {"type": "string"}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let invitation = object(
        &["object", "id", "email_address", "public_metadata", "status", "created_at", "updated_at"],
        json!({
            "object": {"const": "invitation"}, "id": {"type": "string"}, "email_address": {"type": "string"},
            "public_metadata": {"type": "object"}, "revoked": {"type": "boolean"},
            "status": {"enum": ["pending", "accepted", "revoked", "expired"]}, "url": {"type": "string"},
            "expires_at": nullable("integer"), "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let sign_in_token = object(
        &["object", "id", "user_id", "status", "created_at", "updated_at"],
        json!({
            "object": {"const": "sign_in_token"}, "id": {"type": "string"}, "user_id": {"type": "string"},
            "token": {"type": "string"}, "status": {"enum": ["pending", "accepted", "revoked"]}, "url": nullable("string"),
            "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let organization = object(
        &[
            "object",
            "id",
            "name",
            "slug",
            "image_url",
            "has_image",
            "max_allowed_memberships",
            "admin_delete_enabled",
            "public_metadata",
            "private_metadata",
            "created_at",
            "updated_at",
        ],
        json!({
            "object": {"const": "organization"}, "id": {"type": "string"}, "name": {"type": "string"}, "slug": {"type": "string"},
            "image_url": {"type": "string"}, "has_image": {"type": "boolean"}, "members_count": {"type": "integer"},
            "pending_invitations_count": {"type": "integer"}, "max_allowed_memberships": {"type": "integer"},
            "admin_delete_enabled": {"type": "boolean"}, "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"},
            "created_by": nullable("string"), "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let membership = object(
        &[
            "object",
            "id",
            "role",
            "role_name",
            "permissions",
            "public_metadata",
            "private_metadata",
            "organization",
            "public_user_data",
            "created_at",
            "updated_at",
        ],
        json!({
            "object": {"const": "organization_membership"}, "id": {"type": "string"}, "role": {"type": "string"},
            "role_name": {"type": "string"}, "permissions": {"type": "array", "items": {"type": "string"}},
            "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"},
            "organization": {"oneOf": [reference("Organization"), {"type": "null"}]},
            "public_user_data": object(&["user_id", "identifier"], json!({
                "user_id": {"type": "string"}, "identifier": {"type": "string"}, "first_name": nullable("string"),
                "last_name": nullable("string"), "image_url": {"type": "string"}, "has_image": {"type": "boolean"},
                "profile_image_url": nullable("string"), "username": nullable("string"),
            })),
            "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    let org_invitation = object(
        &[
            "object",
            "id",
            "email_address",
            "role",
            "organization_id",
            "status",
            "public_metadata",
            "private_metadata",
            "expires_at",
            "created_at",
            "updated_at",
        ],
        json!({
            "object": {"const": "organization_invitation"}, "id": {"type": "string"}, "email_address": {"type": "string"},
            "role": {"type": "string"}, "role_name": {"type": "string"}, "organization_id": {"type": "string"},
            "inviter_id": nullable("string"),
            "public_inviter_data": {"oneOf": [{"type": "null"}, object(&["user_id", "identifier"], json!({
                "user_id": {"type": "string"}, "identifier": {"type": "string"}, "first_name": nullable("string"),
                "last_name": nullable("string"), "image_url": {"type": "string"}, "has_image": {"type": "boolean"},
            }))]},
            "status": {"enum": ["pending", "accepted", "revoked", "expired"]},
            "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"}, "url": nullable("string"),
            "expires_at": {"type": "integer"}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        }),
    );
    json!({
        "Organization": organization,
        "OrganizationInvitation": org_invitation,
        "Errors": object(&["errors", "clerk_trace_id"], json!({
            "errors": {"type": "array", "minItems": 1, "items": object(&["code", "message", "long_message", "meta"], json!({
                "code": {"type": "string"}, "message": {"type": "string"}, "long_message": {"type": "string"}, "meta": {"type": "object"},
            }))},
            "clerk_trace_id": {"type": "string"},
        })),
        "EmailAddress": email,
        "PhoneNumber": phone,
        "User": user,
        "Session": session,
        "Token": object(&["object", "jwt"], json!({"object": {"const": "token"}, "jwt": {"type": "string"}})),
        "JwtTemplate": template,
        "Invitation": invitation,
        "SignInToken": sign_in_token,
        "DeletedObject": object(&["object", "id", "deleted"], json!({"object": {"type": "string"}, "id": {"type": "string"}, "deleted": {"const": true}})),
        "TotalCount": object(&["object", "total_count"], json!({"object": {"const": "total_count"}, "total_count": {"type": "integer"}})),
        "OrganizationMembership": membership,
        "Verified": object(&["verified"], json!({"verified": {"type": "boolean"}})),
        "OAuthAccessToken": object(
            &["object", "external_account_id", "provider_user_id", "token", "expires_at", "provider", "public_metadata", "label"],
            json!({
                "object": {"const": "oauth_access_token"}, "external_account_id": {"type": "string"},
                "provider_user_id": {"type": "string"}, "token": {"type": "string"}, "expires_at": nullable("integer"),
                "provider": {"type": "string"}, "public_metadata": {"type": "object"}, "label": nullable("string"),
                "scopes": {"type": "array", "items": {"type": "string"}},
            }),
        ),
        "Jwks": object(&["keys"], json!({"keys": {"type": "array", "items": object(&["kty", "kid", "n", "e", "alg", "use"], json!({
            "kty": {"const": "RSA"}, "kid": {"type": "string"}, "n": {"type": "string"}, "e": {"type": "string"}, "alg": {"type": "string"}, "use": {"const": "sig"},
        }))}})),
    })
}

/// The schemas the areas that describe their own objects add.
fn with_webhooks(mut all: Value) -> Value {
    for more in [super::webhooks::schemas(), super::roles::schemas()] {
        if let (Value::Object(map), Value::Object(more)) = (&mut all, more) {
            map.extend(more);
        }
    }
    all
}
