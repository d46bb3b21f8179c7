#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("cache: {0}")]
    Cache(#[from] redis::RedisError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
