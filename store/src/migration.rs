//! Migrations. Each migration is frozen once released; schema changes add a new one.

use sea_orm::{ConnectionTrait, EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::entities::{
    api_key, charge_station, connector, organization, rate, session, user, webhook_delivery,
    webhook_endpoint, webhook_event,
};

/// All migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Initial)]
    }
}

/// The first schema: every table, created from the entities as they were at release.
struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261124_000001_initial"
    }
}

async fn create<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let schema = Schema::new(backend);
    manager
        .create_table(
            schema
                .create_table_from_entity(entity)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
    for mut index in schema.create_index_from_entity(entity) {
        manager
            .get_connection()
            .execute(backend.build(index.if_not_exists()))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, organization::Entity).await?;
        create(manager, api_key::Entity).await?;
        create(manager, user::Entity).await?;
        create(manager, charge_station::Entity).await?;
        create(manager, connector::Entity).await?;
        create(manager, rate::Entity).await?;
        create(manager, session::Entity).await?;
        create(manager, webhook_endpoint::Entity).await?;
        create(manager, webhook_event::Entity).await?;
        create(manager, webhook_delivery::Entity).await?;
        Ok(())
    }
}
