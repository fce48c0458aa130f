import type pg from "pg";

/**
 * A compact Wazo-like `asterisk` schema for the replication and failback tests (Wazo's in full,
 * for the bench and the full-fixture test, is wazo-full-schema.ts): the shapes that broke or
 * could break Wazo's hourly dump — a foreign-key cycle (userfeatures ⇄ voicemail), serial and
 * identity sequences (ALWAYS and BY DEFAULT), a free sequence, a generated column, an enum, a
 * bytea column with large values, jsonb / arrays / floats / intervals, an empty table, and the
 * tables Wazo leaves out (call logs, CEL, queue log, stats, per-host network setup) with rows,
 * one of them holding a foreign key to a replicated table. Names follow Wazo's where it has them,
 * userfeatures' user-state columns (DND, forwards, call filtering) included; the call-record
 * tables are Wazo's own shape (the columns that matter), cel → call_log included.
 */

export const REPLICATED_TABLES = [
  "agentfeatures",
  "context",
  "endpoint_sip",
  "extensions",
  "func_key",
  "infos",
  "linefeatures",
  "moh_file",
  "musiconhold",
  "paging",
  "queue",
  "queuefeatures",
  "queuemember",
  "schedule",
  "trunkfeatures",
  "user_line",
  "userfeatures",
  "voicemail",
] as const;

export const EXCLUDED_TABLES = [
  "call_log",
  "call_log_participant",
  "cel",
  "dhcp",
  "mail",
  "monitoring",
  "netiface",
  "queue_log",
  "resolvconf",
  "session",
  "stat_agent",
  "stat_call_on_queue",
  "stat_queue",
] as const;

/** The call-record tables, as Wazo's Asterisk and call-logd write them: the failback copies these back. */
export const CALL_RECORD_TABLES = ["call_log", "call_log_participant", "cel", "queue_log"] as const;

/**
 * userfeatures' columns a user changes from the phone (Wazo's names and types, integer flags):
 * transfers, call filtering, DND, forwards. Both fixtures have them.
 */
export const USER_STATE_COLUMNS = `enablexfer integer NOT NULL DEFAULT 0,
  incallfilter integer NOT NULL DEFAULT 0,
  enablednd integer NOT NULL DEFAULT 0,
  enableunc integer NOT NULL DEFAULT 0,
  destunc varchar(128) NOT NULL DEFAULT '',
  enablerna integer NOT NULL DEFAULT 0,
  destrna varchar(128) NOT NULL DEFAULT '',
  enablebusy integer NOT NULL DEFAULT 0,
  destbusy varchar(128) NOT NULL DEFAULT '',`;

export const CALL_RECORD_SCHEMA = `
CREATE TABLE call_log (
  id serial PRIMARY KEY,
  date timestamptz NOT NULL,
  date_answer timestamptz,
  date_end timestamptz,
  source_name varchar(255),
  source_exten varchar(255),
  destination_name varchar(255),
  destination_exten varchar(255),
  direction varchar(255),
  user_field varchar(255),
  conversation_id varchar(255)
);
CREATE TYPE call_log_participant_role AS ENUM ('source', 'destination');
CREATE TABLE call_log_participant (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  call_log_id integer REFERENCES call_log (id) ON DELETE CASCADE,
  user_uuid varchar(38) NOT NULL,
  line_id integer,
  role call_log_participant_role NOT NULL,
  tags varchar(128)[] NOT NULL DEFAULT '{}',
  answered boolean NOT NULL DEFAULT false
);
CREATE INDEX call_log_participant__idx__call_log_id ON call_log_participant (call_log_id);
CREATE TABLE cel (
  id serial PRIMARY KEY,
  eventtype varchar(30) NOT NULL,
  eventtime timestamp NOT NULL,
  userdeftype varchar(255) NOT NULL DEFAULT '',
  cid_name varchar(80) NOT NULL,
  cid_num varchar(80) NOT NULL,
  exten varchar(80) NOT NULL,
  context varchar(80) NOT NULL,
  channame varchar(80) NOT NULL,
  appname varchar(80) NOT NULL DEFAULT '',
  appdata varchar(512) NOT NULL DEFAULT '',
  uniqueid varchar(150) NOT NULL,
  linkedid varchar(150) NOT NULL,
  extra text,
  call_log_id integer REFERENCES call_log (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX cel__uniq ON cel (uniqueid, eventtype, eventtime);
CREATE TABLE queue_log (
  time varchar(26) NOT NULL DEFAULT '',
  callid varchar(32) NOT NULL DEFAULT '',
  queuename varchar(50) NOT NULL DEFAULT '',
  agent text NOT NULL DEFAULT '',
  event varchar(20) NOT NULL DEFAULT '',
  data1 text DEFAULT '',
  data2 text DEFAULT '',
  data3 text DEFAULT '',
  id serial PRIMARY KEY
);
`;

const SCHEMA = `
CREATE TYPE queue_strategy AS ENUM ('ringall', 'leastrecent', 'fewestcalls', 'random', 'rrmemory', 'linear', 'wrandom');

CREATE TABLE context (
  name varchar(79) PRIMARY KEY,
  displayname varchar(128),
  contexttype varchar(40) NOT NULL DEFAULT 'internal',
  commented integer NOT NULL DEFAULT 0,
  description text NOT NULL DEFAULT ''
);

CREATE TABLE userfeatures (
  id serial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE,
  firstname varchar(128) NOT NULL DEFAULT '',
  lastname varchar(128) NOT NULL DEFAULT '',
  fullname text GENERATED ALWAYS AS (firstname || ' ' || lastname) STORED,
  email varchar(254),
  voicemailid integer,
  musiconhold varchar(128) NOT NULL DEFAULT '',
  ringseconds integer NOT NULL DEFAULT 30,
  simultcalls integer NOT NULL DEFAULT 5,
  enablevoicemail boolean NOT NULL DEFAULT false,
  ${USER_STATE_COLUMNS}
  mobilephonenumber varchar(128) NOT NULL DEFAULT '',
  preferences jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  description text NOT NULL DEFAULT ''
);

CREATE TABLE voicemail (
  uniqueid serial PRIMARY KEY,
  context varchar(79) NOT NULL REFERENCES context(name),
  mailbox varchar(40) NOT NULL,
  password varchar(80),
  fullname varchar(80) NOT NULL DEFAULT '',
  email varchar(80),
  attach boolean,
  maxmsg integer,
  user_id integer REFERENCES userfeatures(id),
  UNIQUE (mailbox, context)
);
-- The cycle: a user points at its voicemail, the voicemail at its user.
ALTER TABLE userfeatures ADD CONSTRAINT userfeatures_voicemailid_fkey FOREIGN KEY (voicemailid) REFERENCES voicemail(uniqueid);

CREATE TABLE linefeatures (
  id serial PRIMARY KEY,
  context varchar(79) NOT NULL REFERENCES context(name),
  name varchar(128) NOT NULL,
  protocol varchar(10) NOT NULL DEFAULT 'sip',
  device varchar(32),
  provisioningid integer NOT NULL,
  configregistrar varchar(128),
  num integer DEFAULT 1,
  commented integer NOT NULL DEFAULT 0
);

CREATE TABLE user_line (
  user_id integer NOT NULL REFERENCES userfeatures(id),
  line_id integer NOT NULL REFERENCES linefeatures(id),
  main_user boolean NOT NULL DEFAULT true,
  main_line boolean NOT NULL DEFAULT true,
  PRIMARY KEY (user_id, line_id)
);

CREATE TABLE extensions (
  id serial PRIMARY KEY,
  commented integer NOT NULL DEFAULT 0,
  context varchar(79) NOT NULL REFERENCES context(name),
  exten varchar(40) NOT NULL,
  type varchar(20) NOT NULL,
  typeval varchar(255) NOT NULL DEFAULT '',
  UNIQUE (exten, context)
);

CREATE TABLE queue (
  name varchar(128) PRIMARY KEY,
  musicclass varchar(128),
  timeout integer DEFAULT 0,
  strategy queue_strategy NOT NULL DEFAULT 'ringall',
  weight real DEFAULT 0.1,
  wrapuptime interval NOT NULL DEFAULT '00:00:05',
  category varchar(10) NOT NULL
);

CREATE TABLE queuefeatures (
  id serial PRIMARY KEY,
  name varchar(128) NOT NULL REFERENCES queue(name),
  displayname varchar(128) NOT NULL,
  number varchar(40),
  context varchar(79) REFERENCES context(name),
  timeout integer DEFAULT 0,
  ratio double precision
);

CREATE TABLE queuemember (
  queue_name varchar(128) NOT NULL REFERENCES queue(name),
  interface varchar(128) NOT NULL,
  penalty integer NOT NULL DEFAULT 0,
  usertype varchar(10) NOT NULL,
  userid integer NOT NULL,
  position integer NOT NULL DEFAULT 0,
  PRIMARY KEY (queue_name, interface)
);

CREATE TABLE agentfeatures (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  numgroup integer NOT NULL DEFAULT 1,
  firstname varchar(128) NOT NULL DEFAULT '',
  lastname varchar(128) NOT NULL DEFAULT '',
  number varchar(40) NOT NULL UNIQUE,
  passwd varchar(128) NOT NULL DEFAULT '',
  context varchar(79) NOT NULL REFERENCES context(name),
  language varchar(20),
  skills text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE endpoint_sip (
  uuid uuid PRIMARY KEY,
  label text,
  name text NOT NULL UNIQUE,
  options jsonb NOT NULL DEFAULT '[]'
);

CREATE TABLE trunkfeatures (
  id serial PRIMARY KEY,
  endpoint_sip_uuid uuid REFERENCES endpoint_sip(uuid),
  context varchar(79) REFERENCES context(name),
  registercommented integer NOT NULL DEFAULT 0,
  description text
);

CREATE TABLE func_key (
  id serial PRIMARY KEY,
  type_id integer NOT NULL,
  destination_type_id integer NOT NULL,
  user_id integer REFERENCES userfeatures(id),
  label text,
  position smallint
);

CREATE TABLE musiconhold (
  id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  category varchar(128) NOT NULL,
  filename varchar(128) NOT NULL,
  mode varchar(20) NOT NULL DEFAULT 'files'
);

-- Large values: uploaded music on hold, greetings.
CREATE TABLE moh_file (
  id serial PRIMARY KEY,
  name text NOT NULL,
  content bytea NOT NULL,
  checksum text GENERATED ALWAYS AS (md5(content)) STORED
);

CREATE TABLE schedule (
  id serial PRIMARY KEY,
  name varchar(255),
  timezone varchar(128),
  fallback_actionid varchar(255),
  commented integer NOT NULL DEFAULT 0,
  cost numeric(10, 4)
);

-- Always empty in the fixture.
CREATE TABLE paging (
  id serial PRIMARY KEY,
  number varchar(32) UNIQUE,
  name varchar(128),
  duplex boolean NOT NULL DEFAULT false
);

CREATE TABLE infos (
  uuid uuid PRIMARY KEY,
  wazo_version varchar(64) NOT NULL,
  live_reload_enabled boolean NOT NULL DEFAULT true,
  timezone varchar(128)
);

-- A sequence of its own, owned by no table (judged by its name).
CREATE SEQUENCE provisioning_seq START 1000;

-- What Wazo does not replicate: local history and per-host setup.
${CALL_RECORD_SCHEMA}
CREATE TABLE stat_agent (id serial PRIMARY KEY, name varchar(128) NOT NULL, number varchar(40) NOT NULL);
CREATE TABLE stat_queue (id serial PRIMARY KEY, name varchar(128) NOT NULL);
CREATE TABLE stat_call_on_queue (
  id serial PRIMARY KEY,
  callid varchar(32) NOT NULL,
  time timestamptz NOT NULL,
  stat_queue_id integer REFERENCES stat_queue(id),
  stat_agent_id integer REFERENCES stat_agent(id),
  status varchar(20)
);
-- Kept on each node, yet pointing at a replicated table: TRUNCATE of userfeatures is refused.
CREATE TABLE session (sessid char(32) PRIMARY KEY, start integer NOT NULL, expire integer NOT NULL, data text, user_id integer REFERENCES userfeatures(id));
CREATE TABLE dhcp (id serial PRIMARY KEY, pool_start varchar(64), pool_end varchar(64));
CREATE TABLE mail (id serial PRIMARY KEY, mydomain varchar(255), relayhost varchar(255));
CREATE TABLE monitoring (id serial PRIMARY KEY, alert_emails varchar(4096), maintenance boolean);
CREATE TABLE netiface (id serial PRIMARY KEY, ifname varchar(64) NOT NULL, address inet, netmask inet);
CREATE TABLE resolvconf (id serial PRIMARY KEY, hostname varchar(63), domain varchar(255), nameserver1 varchar(255));
`;

export async function createWazoSchema(client: pg.ClientBase): Promise<void> {
  await client.query(SCHEMA);
}

export interface SeedOptions {
  /** 1 gives a few thousand rows; the bench uses hundreds. */
  scale?: number;
  /** Size of each large bytea value. Default 256 KiB. */
  blobBytes?: number;
}

/**
 * Fills the schema deterministically (the same scale gives the same rows), server-side with
 * generate_series so that even a million rows take seconds. Sequences end where the rows do.
 */
export async function seedWazo(client: pg.ClientBase, opts: SeedOptions = {}): Promise<void> {
  const s = Math.max(1, Math.round(opts.scale ?? 1));
  const blob = opts.blobBytes ?? 256 * 1024;
  const users = 400 * s;
  const q = (sql: string) => client.query(sql);
  // Text of a given length from a counter, cheap and deterministic.
  const pad = (expr: string, n: number) => `rpad(md5(${expr}::text), ${n}, md5((${expr})::text || 'x'))`;

  await q("BEGIN");
  await q(`INSERT INTO context (name, displayname, contexttype, description)
           SELECT 'ctx-' || i, 'Context ' || i, CASE WHEN i % 5 = 0 THEN 'incall' ELSE 'internal' END, ${pad("i", 40)}
             FROM generate_series(1, ${10 + s}) i`);
  await q(`INSERT INTO userfeatures (id, uuid, firstname, lastname, email, musiconhold, ringseconds, enablevoicemail, enablednd, enableunc, destunc,
                                     mobilephonenumber, preferences, created_at, description)
           SELECT i, md5('user' || i)::uuid, 'First' || i, 'Last' || (i % 997), 'user' || i || '@example.com', 'default', 10 + i % 50,
                  i % 3 = 0, (i % 11 = 0)::int, (i % 13 = 0)::int, CASE WHEN i % 13 = 0 THEN '06' || lpad(i::text, 8, '0') ELSE '' END,
                  '+3361234' || lpad(i::text, 6, '0'),
                  jsonb_build_object('lang', CASE WHEN i % 2 = 0 THEN 'fr_FR' ELSE 'en_US' END, 'n', i, 'ratio', (i % 7) / 3.0::float8),
                  timestamptz '2024-01-01 00:00:00+00' + i * interval '37 seconds', ${pad("i", 120)}
             FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO voicemail (uniqueid, context, mailbox, password, fullname, email, attach, maxmsg, user_id)
           SELECT i, 'ctx-' || (1 + i % 10), (1000 + i)::text, (i % 10000)::text, 'First' || i || ' Last' || (i % 997),
                  CASE WHEN i % 4 = 0 THEN NULL ELSE 'vm' || i || '@example.com' END, i % 2 = 0, 100, i
             FROM generate_series(1, ${users}, 3) i`);
  await q(`UPDATE userfeatures SET voicemailid = id WHERE id % 3 = 1`);
  await q(`INSERT INTO linefeatures (id, context, name, protocol, device, provisioningid, configregistrar, num)
           SELECT i, 'ctx-' || (1 + i % 10), 'line' || i, CASE WHEN i % 10 = 0 THEN 'sccp' ELSE 'sip' END,
                  substr(md5('dev' || i), 1, 32), 100000 + i, 'default', 1
             FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO user_line (user_id, line_id, main_user, main_line)
           SELECT i, i, true, true FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO extensions (id, context, exten, type, typeval)
           SELECT i, 'ctx-' || (1 + i % 10), (10000 + i)::text, CASE WHEN i % 2 = 0 THEN 'user' ELSE 'incall' END, (i % ${users} + 1)::text
             FROM generate_series(1, ${2 * users}) i`);
  await q(`INSERT INTO queue (name, musicclass, timeout, strategy, weight, wrapuptime, category)
           SELECT 'queue' || i, 'default', 15 + i % 30, (enum_range(NULL::queue_strategy))[1 + i % 7], (i % 10) / 10.0, (i % 60) * interval '1 second',
                  CASE WHEN i % 4 = 0 THEN 'group' ELSE 'queue' END
             FROM generate_series(1, ${20 * s}) i`);
  await q(`INSERT INTO queuefeatures (id, name, displayname, number, context, timeout, ratio)
           SELECT i, 'queue' || i, 'Queue ' || i, (3000 + i)::text, 'ctx-1', 30, i / 7.0::float8
             FROM generate_series(1, ${20 * s}) i`);
  await q(`INSERT INTO queuemember (queue_name, interface, penalty, usertype, userid, position)
           SELECT 'queue' || (1 + i % ${20 * s}), 'PJSIP/line' || i, i % 5, 'user', i, i % 20
             FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO agentfeatures (firstname, lastname, number, passwd, context, language, skills)
           SELECT 'Agent' || i, 'Smith' || i, (8000 + i)::text, (i % 9999)::text, 'ctx-1', 'fr_FR', ARRAY['sales', 'level' || (i % 3)]
             FROM generate_series(1, ${50 * s}) i`);
  await q(`INSERT INTO endpoint_sip (uuid, label, name, options)
           SELECT md5('sip' || i)::uuid, 'trunk ' || i, 'trunk' || i, jsonb_build_array(jsonb_build_array('host', '192.0.2.' || (i % 250)), jsonb_build_array('qualify', 'yes'))
             FROM generate_series(1, ${5 * s}) i`);
  await q(`INSERT INTO trunkfeatures (id, endpoint_sip_uuid, context, registercommented, description)
           SELECT i, md5('sip' || i)::uuid, 'ctx-2', 0, 'Provider ' || i FROM generate_series(1, ${5 * s}) i`);
  await q(`INSERT INTO func_key (id, type_id, destination_type_id, user_id, label, position)
           SELECT i, 1 + i % 3, 1 + i % 12, 1 + i % ${users}, 'key ' || i, (i % 60)::smallint
             FROM generate_series(1, ${2 * users}) i`);
  await q(`INSERT INTO musiconhold (category, filename, mode)
           SELECT 'moh' || (i % 5), 'file' || i || '.wav', 'files' FROM generate_series(1, ${10 * s}) i`);
  // A handful of large binary values (incompressible enough that TOAST keeps them big).
  await q(`INSERT INTO moh_file (id, name, content)
           SELECT i, 'greeting-' || i || '.wav',
                  (SELECT string_agg(decode(md5(i::text || ':' || j), 'hex'), ''::bytea) FROM generate_series(1, ${Math.ceil(blob / 16)}) j)
             FROM generate_series(1, 4) i`);
  await q(`INSERT INTO schedule (id, name, timezone, fallback_actionid, cost)
           SELECT i, 'Office hours ' || i, 'Europe/Paris', NULL, i * 1.2345 FROM generate_series(1, ${10 * s}) i`);
  await q(
    `INSERT INTO infos (uuid, wazo_version, timezone) VALUES ('5b2f0ee2-3f2c-4fb0-9a0f-0c6c3e0d5a01', '24.01', 'Europe/Paris')`,
  );

  // Excluded tables, with rows: they must stay as the slave has them.
  await q(`INSERT INTO call_log (date, date_answer, date_end, source_name, source_exten, destination_exten, user_field)
           SELECT timestamptz '2024-03-01 00:00:00+00' + i * interval '1 minute', NULL, NULL, 'Caller ' || i, (10000 + i % 500)::text, (20000 + i % 500)::text, ''
             FROM generate_series(1, ${300 * s}) i`);
  await q(`INSERT INTO call_log_participant (uuid, call_log_id, user_uuid, role, answered)
           SELECT md5('clp' || i)::uuid, i, md5('user' || (1 + i % ${users}))::uuid::text,
                  (CASE WHEN i % 2 = 0 THEN 'source' ELSE 'destination' END)::call_log_participant_role, i % 3 = 0
             FROM generate_series(1, ${300 * s}) i`);
  // CEL rows of one call share a linkedid and point at that call's call_log row.
  await q(`INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame, uniqueid, linkedid, extra, call_log_id)
           SELECT 'CHAN_START', timestamp '2024-03-01 00:00:00' + i * interval '1 second', 'Caller ' || i, (10000 + i % 500)::text, 's', 'ctx-1',
                  'PJSIP/line' || (1 + i % ${users}) || '-' || lpad(to_hex(i), 8, '0'), '1700000000.' || i, '1700000000.' || (i - i % 4), NULL, 1 + i / 4
             FROM generate_series(1, ${1000 * s}) i`);
  await q(`INSERT INTO queue_log (time, callid, queuename, agent, event, data1)
           SELECT to_char(timestamp '2024-03-01 00:00:00' + i * interval '2 seconds', 'YYYY-MM-DD HH24:MI:SS.US'), 'call' || i, 'queue' || (1 + i % 20), 'Agent/' || (8000 + i % 50), 'ENTERQUEUE', ''
             FROM generate_series(1, ${200 * s}) i`);
  await q(`INSERT INTO stat_agent (name, number) SELECT 'Agent/' || i, (8000 + i)::text FROM generate_series(1, 20) i`);
  await q(`INSERT INTO stat_queue (name) SELECT 'queue' || i FROM generate_series(1, 20) i`);
  await q(`INSERT INTO stat_call_on_queue (callid, time, stat_queue_id, stat_agent_id, status)
           SELECT 'call' || i, timestamptz '2024-03-01 00:00:00+00' + i * interval '3 seconds', 1 + i % 20, 1 + i % 20, 'answered'
             FROM generate_series(1, ${100 * s}) i`);
  await q(
    `INSERT INTO session (sessid, start, expire, data, user_id) VALUES ('${"a".repeat(32)}', 1700000000, 1700003600, 'x', 1)`,
  );
  await q(`INSERT INTO dhcp (pool_start, pool_end) VALUES ('10.0.0.100', '10.0.0.200')`);
  await q(`INSERT INTO mail (mydomain, relayhost) VALUES ('master.example.com', 'smtp.example.com')`);
  await q(`INSERT INTO monitoring (alert_emails, maintenance) VALUES ('ops@example.com', false)`);
  await q(`INSERT INTO netiface (ifname, address, netmask) VALUES ('eth0', '10.0.0.1', '255.255.255.0')`);
  await q(`INSERT INTO resolvconf (hostname, domain, nameserver1) VALUES ('master', 'example.com', '10.0.0.254')`);

  // Serial sequences end where the explicit ids do, as after a real life of inserts.
  for (const [table, col] of [
    ["userfeatures", "id"],
    ["voicemail", "uniqueid"],
    ["linefeatures", "id"],
    ["extensions", "id"],
    ["queuefeatures", "id"],
    ["trunkfeatures", "id"],
    ["func_key", "id"],
    ["moh_file", "id"],
    ["schedule", "id"],
  ] as const) {
    await q(
      `SELECT setval(pg_get_serial_sequence('public.${table}', '${col}'), (SELECT max(${col}) FROM public.${table}))`,
    );
  }
  await q(`SELECT nextval('provisioning_seq') FROM generate_series(1, 3)`);
  await q("COMMIT");
}
