//! The tfplugin6 Provider service: decodes Terraform's values, dispatches to the resource by type name, encodes
//! the answer. No database logic lives here.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::RwLock;
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn};
use usualstore_cty::{Type, Value};

use crate::config::{self, ProviderContext};
use crate::data_sources::{self, DataSource};
use crate::diagnostics::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::ephemeral::{self, EphemeralResource};
use crate::proto::tfplugin6::{self, provider_server::Provider};
use crate::resources::{self, ApplyRequest, PlanRequest, Private, Resource};

pub struct UsualstoreProvider {
    resources: HashMap<&'static str, Box<dyn Resource>>,
    data_sources: HashMap<&'static str, Box<dyn DataSource>>,
    ephemerals: HashMap<&'static str, Box<dyn EphemeralResource>>,
    provider_schema: crate::schema::Schema,
    context: RwLock<Option<Arc<ProviderContext>>>,
    stopping: AtomicBool,
}

impl UsualstoreProvider {
    pub fn new() -> Self {
        Self {
            resources: resources::all()
                .into_iter()
                .map(|r| (r.type_name(), r))
                .collect(),
            data_sources: data_sources::all()
                .into_iter()
                .map(|d| (d.type_name(), d))
                .collect(),
            ephemerals: ephemeral::all()
                .into_iter()
                .map(|r| (r.type_name(), r))
                .collect(),
            provider_schema: config::schema(),
            context: RwLock::new(None),
            stopping: AtomicBool::new(false),
        }
    }

    fn resource(&self, type_name: &str) -> Result<&dyn Resource, Diagnostics> {
        self.resources
            .get(type_name)
            .map(|r| r.as_ref())
            .ok_or_else(|| {
                Diagnostic::error(
                    "Unknown resource type",
                    format!("The usualstore provider has no resource type {type_name:?}."),
                )
                .into()
            })
    }

    fn data_source(&self, type_name: &str) -> Result<&dyn DataSource, Diagnostics> {
        self.data_sources
            .get(type_name)
            .map(|d| d.as_ref())
            .ok_or_else(|| {
                Diagnostic::error(
                    "Unknown data source",
                    format!("The usualstore provider has no data source {type_name:?}."),
                )
                .into()
            })
    }

    fn ephemeral(&self, type_name: &str) -> Result<&dyn EphemeralResource, Diagnostics> {
        self.ephemerals
            .get(type_name)
            .map(|r| r.as_ref())
            .ok_or_else(|| {
                Diagnostic::error(
                    "Unknown ephemeral resource type",
                    format!(
                        "The usualstore provider has no ephemeral resource type {type_name:?}."
                    ),
                )
                .into()
            })
    }

    async fn context(&self) -> Result<Arc<ProviderContext>, Diagnostics> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Diagnostic::error(
                "Provider is stopping",
                "Terraform asked the provider to stop; no new database work is started.",
            )
            .into());
        }
        self.context.read().await.clone().ok_or_else(|| {
            Diagnostic::error(
                "Provider is not configured",
                "Terraform did not configure the usualstore provider before using it. This is a bug; please \
                 report it.",
            )
            .into()
        })
    }
}

impl Default for UsualstoreProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn decode(
    value: Option<&tfplugin6::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostics> {
    let Some(value) = value else {
        return Ok(Value::Null);
    };
    let decoded = if !value.msgpack.is_empty() {
        usualstore_cty::decode_msgpack(&value.msgpack, ty)
    } else if !value.json.is_empty() {
        usualstore_cty::decode_json(&value.json, ty)
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|e| {
        Diagnostic::error(
            format!("Could not decode the {what}"),
            format!("Terraform sent a value this provider cannot read: {e}"),
        )
        .into()
    })
}

fn encode(value: &Value, ty: &Type) -> Result<tfplugin6::DynamicValue, Diagnostics> {
    usualstore_cty::encode_msgpack(value, ty)
        .map(|msgpack| tfplugin6::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| {
            Diagnostic::error(
                "Could not encode a value for Terraform",
                format!("This is a bug in the provider: {e}"),
            )
            .into()
        })
}

fn attribute_path(name: &str) -> tfplugin6::AttributePath {
    use tfplugin6::attribute_path::{Step, step::Selector};
    tfplugin6::AttributePath {
        steps: vec![Step {
            selector: Some(Selector::AttributeName(name.to_owned())),
        }],
    }
}

/// Upgrades a stored state to the current schema. Version 0 is the only version so far; attributes that the
/// schema no longer has are dropped so an older state never blocks a newer provider.
fn upgrade_state(raw: &tfplugin6::RawState, ty: &Type) -> Result<Value, Diagnostics> {
    let mut json: serde_json::Value = serde_json::from_slice(&raw.json).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Could not read the stored state",
            format!("The state is not valid JSON: {e}"),
        ))
    })?;
    if let (serde_json::Value::Object(map), Type::Object(attrs)) = (&mut json, ty) {
        map.retain(|k, _| attrs.contains_key(k));
    }
    let bytes = serde_json::to_vec(&json).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Could not read the stored state",
            e.to_string(),
        ))
    })?;
    usualstore_cty::decode_json(&bytes, ty).map_err(|e| {
        Diagnostic::error(
            "Could not read the stored state",
            format!("The state does not match the resource schema: {e}"),
        )
        .into()
    })
}

#[tonic::async_trait]
impl Provider for UsualstoreProvider {
    async fn get_metadata(
        &self,
        _request: Request<tfplugin6::get_metadata::Request>,
    ) -> Result<Response<tfplugin6::get_metadata::Response>, Status> {
        Ok(Response::new(tfplugin6::get_metadata::Response {
            server_capabilities: Some(server_capabilities()),
            resources: self
                .resources
                .keys()
                .map(|name| tfplugin6::get_metadata::ResourceMetadata {
                    type_name: (*name).to_owned(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|name| tfplugin6::get_metadata::DataSourceMetadata {
                    type_name: (*name).to_owned(),
                })
                .collect(),
            ephemeral_resources: self
                .ephemerals
                .keys()
                .map(|name| tfplugin6::get_metadata::EphemeralMetadata {
                    type_name: (*name).to_owned(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<tfplugin6::get_provider_schema::Request>,
    ) -> Result<Response<tfplugin6::get_provider_schema::Response>, Status> {
        Ok(Response::new(tfplugin6::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(name, r)| ((*name).to_owned(), r.schema().to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(name, d)| ((*name).to_owned(), d.schema().to_proto()))
                .collect(),
            ephemeral_resource_schemas: self
                .ephemerals
                .iter()
                .map(|(name, r)| ((*name).to_owned(), r.schema().to_proto()))
                .collect(),
            server_capabilities: Some(server_capabilities()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<tfplugin6::validate_provider_config::Request>,
    ) -> Result<Response<tfplugin6::validate_provider_config::Response>, Status> {
        let ty = self.provider_schema.object_type();
        let diagnostics = match decode(
            request.get_ref().config.as_ref(),
            &ty,
            "provider configuration",
        ) {
            Err(d) => d,
            // Unknown values are fine at validation time; ConfigureProvider insists on known ones.
            Ok(config) => match config::resolve(&config, |k| std::env::var(k).ok()) {
                Err(d) => Diagnostics(
                    d.0.into_iter()
                        .filter(|x| x.kind != DiagnosticKind::NotKnownYet)
                        .collect(),
                ),
                Ok(_) => Diagnostics::default(),
            },
        };
        Ok(Response::new(
            tfplugin6::validate_provider_config::Response {
                diagnostics: diagnostics.into_proto(),
            },
        ))
    }

    async fn validate_resource_config(
        &self,
        request: Request<tfplugin6::validate_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_resource_config::Response>, Status> {
        let req = request.get_ref();
        let diagnostics = match self.resource(&req.type_name) {
            Err(d) => d,
            Ok(resource) => {
                match decode(
                    req.config.as_ref(),
                    &resource.schema().object_type(),
                    "configuration",
                ) {
                    Err(d) => d,
                    Ok(config) => {
                        // Terraform before 1.11 does not say it can take write-only values, and
                        // would store them.
                        let write_only_allowed = req
                            .client_capabilities
                            .as_ref()
                            .is_some_and(|c| c.write_only_attributes_allowed);
                        let mut diagnostics = resource.validate(&config);
                        if !write_only_allowed {
                            diagnostics.extend(
                                resource
                                    .schema()
                                    .refuse_write_only(&config, "this Terraform"),
                            );
                        }
                        diagnostics
                    }
                }
            }
        };
        Ok(Response::new(
            tfplugin6::validate_resource_config::Response {
                diagnostics: diagnostics.into_proto(),
            },
        ))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tfplugin6::validate_data_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_data_resource_config::Response>, Status> {
        let req = request.get_ref();
        let diagnostics = self.data_source(&req.type_name).map_or_else(
            |d| d,
            |data_source| {
                let ty = data_source.schema().object_type();
                match decode(req.config.as_ref(), &ty, "configuration") {
                    Ok(config) => data_source.validate(&config),
                    Err(d) => d,
                }
            },
        );
        Ok(Response::new(
            tfplugin6::validate_data_resource_config::Response {
                diagnostics: diagnostics.into_proto(),
            },
        ))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tfplugin6::upgrade_resource_state::Request>,
    ) -> Result<Response<tfplugin6::upgrade_resource_state::Response>, Status> {
        let req = request.get_ref();
        let result = self.resource(&req.type_name).and_then(|resource| {
            let ty = resource.schema().object_type();
            let value = match &req.raw_state {
                Some(raw) if !raw.json.is_empty() => upgrade_state(raw, &ty)?,
                _ => Value::Null,
            };
            encode(&value, &ty)
        });
        Ok(Response::new(match result {
            Ok(upgraded) => tfplugin6::upgrade_resource_state::Response {
                upgraded_state: Some(upgraded),
                diagnostics: Vec::new(),
            },
            Err(d) => tfplugin6::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: d.into_proto(),
            },
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<tfplugin6::configure_provider::Request>,
    ) -> Result<Response<tfplugin6::configure_provider::Response>, Status> {
        let req = request.get_ref();
        let ty = self.provider_schema.object_type();
        let result = async {
            let config = decode(req.config.as_ref(), &ty, "provider configuration")?;
            let settings = config::resolve(&config, |k| std::env::var(k).ok())?;
            info!(
                terraform_version = %req.terraform_version,
                server = %settings.describe(),
                sslmode = settings.sslmode.as_str(),
                "configuring provider"
            );
            let server = crate::connect::server_for(&settings)?;
            let public_can_connect = crate::connect::check(&server, &settings).await?;
            let mut context = ProviderContext::new(settings, server);
            context.public_can_connect = public_can_connect;
            context.terraform_version = req.terraform_version.clone();
            Ok::<_, Diagnostics>(context)
        }
        .await;
        let diagnostics = match result {
            Ok(context) => {
                *self.context.write().await = Some(Arc::new(context));
                Diagnostics::default()
            }
            Err(d) => d,
        };
        Ok(Response::new(tfplugin6::configure_provider::Response {
            diagnostics: diagnostics.into_proto(),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<tfplugin6::read_resource::Request>,
    ) -> Result<Response<tfplugin6::read_resource::Response>, Status> {
        let req = request.into_inner();
        let result = async {
            let resource = self.resource(&req.type_name)?;
            let ty = resource.schema().object_type();
            let state = decode(req.current_state.as_ref(), &ty, "current state")?;
            if state.is_null() {
                return Ok((encode(&Value::Null, &ty)?, Diagnostics::default()));
            }
            let ctx = self.context().await?;
            let _slot = ctx.operation_slot().await;
            let refreshed = resource
                .read(&ctx, &state, &Private::from_bytes(&req.private))
                .await?;
            Ok::<_, Diagnostics>((encode(&refreshed.state, &ty)?, refreshed.warnings))
        }
        .await;
        Ok(Response::new(match result {
            Ok((new_state, warnings)) => tfplugin6::read_resource::Response {
                new_state: Some(new_state),
                diagnostics: warnings.into_proto(),
                private: req.private,
                ..Default::default()
            },
            Err(d) => tfplugin6::read_resource::Response {
                // Terraform keeps the prior state when a refresh fails.
                new_state: req.current_state,
                diagnostics: d.into_proto(),
                private: req.private,
                ..Default::default()
            },
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<tfplugin6::plan_resource_change::Request>,
    ) -> Result<Response<tfplugin6::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        let result = async {
            let resource = self.resource(&req.type_name)?;
            let ty = resource.schema().object_type();
            let prior = decode(req.prior_state.as_ref(), &ty, "prior state")?;
            let proposed = decode(req.proposed_new_state.as_ref(), &ty, "proposed state")?;
            let config = decode(req.config.as_ref(), &ty, "configuration")?;
            let ctx = self.context.read().await.clone();
            if let Some(ctx) = ctx.as_deref()
                && !ctx.terraform_keeps_write_only()
            {
                let terraform = format!("Terraform {}", ctx.terraform_version);
                resource
                    .schema()
                    .refuse_write_only(&config, &terraform)
                    .into_result()?;
            }
            let _slot = match &ctx {
                Some(ctx) => ctx.operation_slot().await,
                None => None,
            };
            let planned = resource
                .plan(
                    ctx.as_deref(),
                    PlanRequest {
                        prior: &prior,
                        proposed: &proposed,
                        config: &config,
                    },
                )
                .await?;
            debug!(type_name = %req.type_name, replace = ?planned.requires_replace, "planned");
            Ok::<_, Diagnostics>((encode(&planned.state, &ty)?, planned))
        }
        .await;
        Ok(Response::new(match result {
            Ok((state, planned)) => tfplugin6::plan_resource_change::Response {
                planned_state: Some(state),
                requires_replace: planned
                    .requires_replace
                    .iter()
                    .map(|name| attribute_path(name))
                    .collect(),
                planned_private: req.prior_private,
                diagnostics: planned.warnings.into_proto(),
                ..Default::default()
            },
            Err(d) => tfplugin6::plan_resource_change::Response {
                diagnostics: d.into_proto(),
                ..Default::default()
            },
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<tfplugin6::apply_resource_change::Request>,
    ) -> Result<Response<tfplugin6::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        let result = async {
            let resource = self.resource(&req.type_name)?;
            let ty = resource.schema().object_type();
            let prior = decode(req.prior_state.as_ref(), &ty, "prior state")?;
            let planned = decode(req.planned_state.as_ref(), &ty, "planned state")?;
            let config = decode(req.config.as_ref(), &ty, "configuration")?;
            let ctx = self.context().await?;
            let slot = ctx.operation_slot().await;
            let private = Private::from_bytes(&req.planned_private);
            let request = ApplyRequest {
                prior: &prior,
                planned: &planned,
                config: &config,
                private: &private,
            };
            let (applied, closing) =
                usualstore_tenancy::with_deferred_closes(resource.apply(&ctx, request)).await;
            // Answer as soon as the last statement is done; the slot is given back once the
            // sessions the apply used have ended on the server's side.
            tokio::spawn(async move {
                closing.wait().await;
                drop(slot);
            });
            let applied = applied?;
            Ok::<_, Diagnostics>((encode(&applied.state, &ty)?, applied.private.to_bytes()))
        }
        .await;
        Ok(Response::new(match result {
            Ok((new_state, private)) => tfplugin6::apply_resource_change::Response {
                new_state: Some(new_state),
                private,
                ..Default::default()
            },
            Err(d) => {
                warn!(type_name = %req.type_name, "apply failed");
                // On failure the prior state stands: nothing we did is reported as done.
                tfplugin6::apply_resource_change::Response {
                    new_state: req.prior_state,
                    diagnostics: d.into_proto(),
                    ..Default::default()
                }
            }
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<tfplugin6::import_resource_state::Request>,
    ) -> Result<Response<tfplugin6::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        let result = async {
            let resource = self.resource(&req.type_name)?;
            let ty = resource.schema().object_type();
            let ctx = self.context().await?;
            let _slot = ctx.operation_slot().await;
            let state = resource.import(&ctx, &req.id).await?;
            encode(&state, &ty)
        }
        .await;
        Ok(Response::new(match result {
            Ok(state) => tfplugin6::import_resource_state::Response {
                imported_resources: vec![tfplugin6::import_resource_state::ImportedResource {
                    type_name: req.type_name,
                    state: Some(state),
                    private: Vec::new(),
                }],
                ..Default::default()
            },
            Err(d) => tfplugin6::import_resource_state::Response {
                diagnostics: d.into_proto(),
                ..Default::default()
            },
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<tfplugin6::read_data_source::Request>,
    ) -> Result<Response<tfplugin6::read_data_source::Response>, Status> {
        let req = request.get_ref();
        let result = async {
            let data_source = self.data_source(&req.type_name)?;
            let ty = data_source.schema().object_type();
            let config = decode(req.config.as_ref(), &ty, "configuration")?;
            let ctx = self.context().await?;
            let _slot = ctx.operation_slot().await;
            let read = data_source.read(&ctx, &config).await?;
            Ok::<_, Diagnostics>((encode(&read.state, &ty)?, read.warnings))
        }
        .await;
        Ok(Response::new(match result {
            Ok((state, warnings)) => tfplugin6::read_data_source::Response {
                state: Some(state),
                diagnostics: warnings.into_proto(),
                ..Default::default()
            },
            Err(d) => tfplugin6::read_data_source::Response {
                diagnostics: d.into_proto(),
                ..Default::default()
            },
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<tfplugin6::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_ephemeral_resource_config::Response>, Status> {
        let req = request.get_ref();
        let diagnostics = self.ephemeral(&req.type_name).map_or_else(
            |d| d,
            |ephemeral| {
                let ty = ephemeral.schema().object_type();
                match decode(req.config.as_ref(), &ty, "configuration") {
                    Ok(config) => ephemeral.validate(&config),
                    Err(d) => d,
                }
            },
        );
        Ok(Response::new(
            tfplugin6::validate_ephemeral_resource_config::Response {
                diagnostics: diagnostics.into_proto(),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<tfplugin6::open_ephemeral_resource::Request>,
    ) -> Result<Response<tfplugin6::open_ephemeral_resource::Response>, Status> {
        let req = request.get_ref();
        let result = async {
            let ephemeral = self.ephemeral(&req.type_name)?;
            let ty = ephemeral.schema().object_type();
            let config = decode(req.config.as_ref(), &ty, "configuration")?;
            let ctx = self.context().await?;
            let _slot = ctx.operation_slot().await;
            encode(&ephemeral.open(&ctx, &config).await?, &ty)
        }
        .await;
        Ok(Response::new(match result {
            Ok(value) => tfplugin6::open_ephemeral_resource::Response {
                result: Some(value),
                ..Default::default()
            },
            Err(d) => tfplugin6::open_ephemeral_resource::Response {
                diagnostics: d.into_proto(),
                ..Default::default()
            },
        }))
    }

    /// Never asked for: no value is opened with a renewal time.
    async fn renew_ephemeral_resource(
        &self,
        _request: Request<tfplugin6::renew_ephemeral_resource::Request>,
    ) -> Result<Response<tfplugin6::renew_ephemeral_resource::Response>, Status> {
        Ok(Response::new(
            tfplugin6::renew_ephemeral_resource::Response::default(),
        ))
    }

    /// Nothing to close: an opened DSN holds no session or lease.
    async fn close_ephemeral_resource(
        &self,
        _request: Request<tfplugin6::close_ephemeral_resource::Request>,
    ) -> Result<Response<tfplugin6::close_ephemeral_resource::Response>, Status> {
        Ok(Response::new(
            tfplugin6::close_ephemeral_resource::Response::default(),
        ))
    }

    async fn stop_provider(
        &self,
        _request: Request<tfplugin6::stop_provider::Request>,
    ) -> Result<Response<tfplugin6::stop_provider::Response>, Status> {
        info!(
            "Terraform asked the provider to stop: finishing operations in flight, starting no new ones"
        );
        self.stopping.store(true, Ordering::SeqCst);
        Ok(Response::new(tfplugin6::stop_provider::Response::default()))
    }
}

fn server_capabilities() -> tfplugin6::ServerCapabilities {
    tfplugin6::ServerCapabilities {
        // Lets Terraform >= 1.3 plan destroys, so deletion protection fails at plan time, before anything runs.
        plan_destroy: true,
        ..Default::default()
    }
}
