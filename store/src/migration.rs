//! Migrations. Each migration is frozen once released; schema changes add a new one.

use sea_orm::{ConnectionTrait, EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::entities::{
    api_key, charge_station, connector, ocpp_transaction, ocpp_transaction_event, organization,
    pending_start, rate, receipt, session, station_connection, station_connector, user,
    webhook_delivery, webhook_endpoint, webhook_event,
};

/// All migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(StationRegistry),
            Box::new(ConnectorMaxPower),
            Box::new(StationSecurityProfile),
            Box::new(Receipts),
            Box::new(TopUp),
            Box::new(Ocpp201Transactions),
        ]
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

/// The OCPP station registry: which gateway holds each station, connector statuses, pending
/// remote starts and OCPP transactions. Spelled out column by column (not derived from the
/// entities) so later entity changes cannot alter what this migration creates.
struct StationRegistry;

impl MigrationName for StationRegistry {
    fn name(&self) -> &str {
        "m20261124_000002_station_registry"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for StationRegistry {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ocpp_transaction as tx;
        use pending_start as ps;
        use station_connection as sc;
        use station_connector as st;

        manager
            .create_table(
                Table::create()
                    .table(sc::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(sc::Column::StationId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(sc::Column::InstanceId).string().not_null())
                    .col(ColumnDef::new(sc::Column::TaskQueue).string().not_null())
                    .col(ColumnDef::new(sc::Column::ConnectionId).string().not_null())
                    .col(ColumnDef::new(sc::Column::Connected).boolean().not_null())
                    .col(
                        ColumnDef::new(sc::Column::ConnectedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(sc::Column::DisconnectedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_station_connections_instance",
            sc::Entity,
            [sc::Column::InstanceId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(st::Entity)
                    .if_not_exists()
                    .col(ColumnDef::new(st::Column::StationId).string().not_null())
                    .col(ColumnDef::new(st::Column::ConnectorId).integer().not_null())
                    .col(ColumnDef::new(st::Column::Status).string().not_null())
                    .col(ColumnDef::new(st::Column::ErrorCode).string().not_null())
                    .col(
                        ColumnDef::new(st::Column::ReportedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(st::Column::StationId)
                            .col(st::Column::ConnectorId),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ps::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ps::Column::IdTag)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ps::Column::SessionId).string().not_null())
                    .col(ColumnDef::new(ps::Column::StationId).string().not_null())
                    .col(ColumnDef::new(ps::Column::ConnectorId).integer().not_null())
                    .col(
                        ColumnDef::new(ps::Column::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ps::Column::Armed).boolean().not_null())
                    .col(ColumnDef::new(ps::Column::Preparing).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_ocpp_pending_starts_connector",
            ps::Entity,
            [ps::Column::StationId, ps::Column::ConnectorId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(tx::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(tx::Column::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(tx::Column::StationId).string().not_null())
                    .col(ColumnDef::new(tx::Column::ConnectorId).integer().not_null())
                    .col(ColumnDef::new(tx::Column::IdTag).string().not_null())
                    .col(ColumnDef::new(tx::Column::SessionId).string().null())
                    .col(
                        ColumnDef::new(tx::Column::MeterStart)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(tx::Column::StartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(tx::Column::MeterStop).big_integer().null())
                    .col(
                        ColumnDef::new(tx::Column::StoppedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(tx::Column::StopReason).string().null())
                    .to_owned(),
            )
            .await?;
        // One row per StartTransaction message: a duplicate sent to two gateways at once
        // cannot become two transactions.
        index(
            manager,
            "uq_ocpp_transactions_start",
            tx::Entity,
            [
                tx::Column::StationId,
                tx::Column::ConnectorId,
                tx::Column::IdTag,
                tx::Column::MeterStart,
                tx::Column::StartedAt,
            ],
            true,
        )
        .await?;
        index(
            manager,
            "idx_ocpp_transactions_open",
            tx::Entity,
            [
                tx::Column::StationId,
                tx::Column::ConnectorId,
                tx::Column::StoppedAt,
            ],
            false,
        )
        .await?;
        index(
            manager,
            "idx_ocpp_transactions_tag",
            tx::Entity,
            [tx::Column::IdTag],
            false,
        )
        .await?;
        Ok(())
    }
}

/// `connectors.max_power_w`: the most power a connector delivers (W), set by the operator; the
/// worst case the session's stop deadline assumes. `Initial` builds `connectors` from the
/// entity, so a database created after this column existed already has it.
struct ConnectorMaxPower;

impl MigrationName for ConnectorMaxPower {
    fn name(&self) -> &str {
        "m20261203_000003_connector_max_power"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ConnectorMaxPower {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("connectors", "max_power_w").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(connector::Entity)
                    .add_column(
                        ColumnDef::new(connector::Column::MaxPowerW)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

/// `charge_stations.security_profile`: the OCPP security profile (1, 2 or 3) a station must
/// connect with. Existing stations get 1 (Basic auth over `ws://` or `wss://`), what the
/// gateway did for every station before. `Initial` builds `charge_stations` from the entity, so
/// a database created after this column existed already has it.
struct StationSecurityProfile;

impl MigrationName for StationSecurityProfile {
    fn name(&self) -> &str {
        "m20261206_000004_station_security_profile"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for StationSecurityProfile {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager
            .has_column("charge_stations", "security_profile")
            .await?
        {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(charge_station::Entity)
                    .add_column(
                        ColumnDef::new(charge_station::Column::SecurityProfile)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await
    }
}

/// Receipts: the operator's name, tax id and address on `organizations`, a station's address
/// on `charge_stations` (all nullable, so existing rows are left as they are), and the
/// `receipts` table (a settled session's token and card). Spelled out column by column, so
/// later entity changes cannot alter what this migration creates. `Initial` builds
/// `organizations` and `charge_stations` from the entities, so a database created after these
/// columns existed already has them.
struct Receipts;

impl MigrationName for Receipts {
    fn name(&self) -> &str {
        "m20261207_000005_receipts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Receipts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ("operator_name", organization::Column::OperatorName),
            ("tax_id", organization::Column::TaxId),
            ("operator_address", organization::Column::OperatorAddress),
        ];
        for (name, column) in columns {
            add_column_if_missing(
                manager,
                organization::Entity,
                name,
                ColumnDef::new(column).string().null().to_owned(),
            )
            .await?;
        }
        add_column_if_missing(
            manager,
            charge_station::Entity,
            "address",
            ColumnDef::new(charge_station::Column::Address)
                .string()
                .null()
                .to_owned(),
        )
        .await?;
        use receipt::Column as R;
        manager
            .create_table(
                Table::create()
                    .table(receipt::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(R::SessionId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(R::OrganizationId).string().not_null())
                    .col(ColumnDef::new(R::Token).string().not_null())
                    .col(ColumnDef::new(R::CardBrand).string().null())
                    .col(ColumnDef::new(R::CardLast4).string().null())
                    .col(
                        ColumnDef::new(R::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx-receipts-token",
            receipt::Entity,
            [R::Token],
            true,
        )
        .await?;
        index(
            manager,
            "idx-receipts-organization_id",
            receipt::Entity,
            [R::OrganizationId],
            false,
        )
        .await
    }
}

/// Top-up: the ceiling and step of raised holds on `organizations` (nullable: existing
/// organizations keep top-up off). `Initial` builds `organizations` from the entity, so a
/// database created after these columns existed already has them.
struct TopUp;

impl MigrationName for TopUp {
    fn name(&self) -> &str {
        "m20261207_000006_top_up"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for TopUp {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ("top_up_ceiling", organization::Column::TopUpCeiling),
            ("top_up_step", organization::Column::TopUpStep),
        ];
        for (name, column) in columns {
            add_column_if_missing(
                manager,
                organization::Entity,
                name,
                ColumnDef::new(column).big_integer().null().to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// OCPP 2.0.1 transactions: the station's own transaction id next to the number chargelink
/// assigns (unique per station, so a repeated Started event finds its row), and the `seqNo`s
/// each transaction has had (a repeated event is not acted on twice).
struct Ocpp201Transactions;

impl MigrationName for Ocpp201Transactions {
    fn name(&self) -> &str {
        "m20261207_000007_ocpp201_transactions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Ocpp201Transactions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ocpp_transaction as tx;
        use ocpp_transaction_event as ev;
        add_column_if_missing(
            manager,
            tx::Entity,
            "station_transaction_id",
            ColumnDef::new(tx::Column::StationTransactionId)
                .string()
                .null()
                .to_owned(),
        )
        .await?;
        // NULLs are distinct in a unique index (SQLite and PostgreSQL), so 1.6 rows never clash.
        index(
            manager,
            "uq_ocpp_transactions_station_tx",
            tx::Entity,
            [tx::Column::StationId, tx::Column::StationTransactionId],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ev::Entity)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ev::Column::TransactionId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ev::Column::SeqNo).big_integer().not_null())
                    .col(
                        ColumnDef::new(ev::Column::ReceivedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ev::Column::TransactionId)
                            .col(ev::Column::SeqNo),
                    )
                    .to_owned(),
            )
            .await
    }
}

/// Adds `column` (named `name`) to `table` unless it is there: `Initial` builds tables from
/// the entities, so a database created after a column existed already has it.
async fn add_column_if_missing<T>(
    manager: &SchemaManager<'_>,
    table: T,
    name: &str,
    mut column: ColumnDef,
) -> Result<(), DbErr>
where
    T: EntityTrait + IntoIden + Copy + 'static,
{
    if manager.has_column(table.table_name(), name).await? {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table(table)
                .add_column(&mut column)
                .to_owned(),
        )
        .await
}

async fn index<T, C, I>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: I,
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
    C: IntoIndexColumn + 'static,
    I: IntoIterator<Item = C>,
{
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for col in cols {
        index.col(col);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index).await
}
