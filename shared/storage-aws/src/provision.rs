//! Creates the table, bucket and key the adapters expect, for tests and local stand-ins. Deployed
//! stacks get them from template.yaml instead.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

use crate::dynamo::INDEX_NAME;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, BoxError> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, BoxError> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

/// Creates the metadata table with its secondary index, on demand billing.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), BoxError> {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(string_attribute("pk")?)
        .attribute_definitions(string_attribute("sk")?)
        .attribute_definitions(string_attribute("ipk")?)
        .attribute_definitions(string_attribute("isk")?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(INDEX_NAME)
                .key_schema(key("ipk", KeyType::Hash)?)
                .key_schema(key("isk", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), BoxError> {
    client.create_bucket().bucket(bucket).send().await?;
    Ok(())
}

/// A symmetric key for sealing secrets; its id.
pub async fn create_key(client: &aws_sdk_kms::Client) -> Result<String, BoxError> {
    let created = client
        .create_key()
        .description("stowage: upstream credentials")
        .send()
        .await?;
    created
        .key_metadata
        .map(|metadata| metadata.key_id)
        .ok_or_else(|| "kms: no key in the answer".into())
}
