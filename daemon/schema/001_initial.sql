-- pushdaemon schema, version 1 (docs/schema.md). Applied by `pushdaemon`
-- (or `pushdaemon-admin migrate`) under GET_LOCK('pushdaemon.migrate'), then
-- recorded in schema_version. Statements are re-runnable (IF NOT EXISTS):
-- MariaDB commits DDL implicitly, so a crash half-way is finished next start.

-- An application and where its push credentials live. Only file paths are
-- stored, never key material.
CREATE TABLE IF NOT EXISTS app (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  apns_topic VARCHAR(255) NULL,
  apns_key_file VARCHAR(1024) NULL,
  apns_key_id CHAR(10) NULL,
  apns_team_id CHAR(10) NULL,
  fcm_service_account_file VARCHAR(1024) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uk_app_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Device tokens. ix_stream serves the keyset pagination of a schedule:
-- WHERE app_id=? AND platform=? AND active=1 AND id > ? ORDER BY id LIMIT n,
-- and covers it (token is in the index): a page is one index range scan,
-- with no lookup into the clustered index per row.
CREATE TABLE IF NOT EXISTS device_token (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  app_id BIGINT UNSIGNED NOT NULL,
  platform ENUM('apns', 'fcm') NOT NULL,
  token VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  last_error VARCHAR(64) NULL,
  deactivated_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uk_token (app_id, platform, token),
  KEY ix_stream (app_id, platform, active, id, token)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Schedules. A daemon claims one (state running, claim_owner, claim_epoch+1,
-- lease_until) and renews the lease while it runs; apns_cursor/fcm_cursor
-- are the highest token id of that platform whose result is persisted (all
-- lower ids are done too). Counters move in the same transaction as the
-- results they count.
CREATE TABLE IF NOT EXISTS schedule (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  app_id BIGINT UNSIGNED NOT NULL,
  send_at DATETIME(6) NOT NULL,
  payload MEDIUMTEXT NOT NULL,
  state ENUM('waiting', 'running', 'done', 'failed') NOT NULL DEFAULT 'waiting',
  claim_owner VARCHAR(128) NULL,
  claim_epoch INT UNSIGNED NOT NULL DEFAULT 0,
  lease_until DATETIME(6) NULL,
  apns_cursor BIGINT UNSIGNED NOT NULL DEFAULT 0,
  fcm_cursor BIGINT UNSIGNED NOT NULL DEFAULT 0,
  success_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
  invalid_token_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
  permanent_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
  retryable_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
  failure_reason VARCHAR(512) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  started_at DATETIME(6) NULL,
  finished_at DATETIME(6) NULL,
  KEY ix_due (state, send_at),
  KEY ix_lease (state, lease_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per (schedule, token): the token's final outcome. Written in the
-- page transaction that advances the schedule's cursor, so a row exists
-- exactly for the tokens at or below the cursor.
CREATE TABLE IF NOT EXISTS push_result (
  schedule_id BIGINT UNSIGNED NOT NULL,
  token_id BIGINT UNSIGNED NOT NULL,
  platform ENUM('apns', 'fcm') NOT NULL,
  outcome ENUM('success', 'invalid_token', 'permanent', 'retryable') NOT NULL,
  status SMALLINT UNSIGNED NOT NULL,
  reason VARCHAR(64) NOT NULL DEFAULT '',
  attempts TINYINT UNSIGNED NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (schedule_id, token_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
