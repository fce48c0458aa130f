import type pg from "pg";
import { CALL_RECORD_SCHEMA, EXCLUDED_TABLES, USER_STATE_COLUMNS } from "./wazo-schema.js";

/**
 * Wazo's `asterisk` database in full, for the replication tests and the bench: the configuration
 * tables a Wazo 25 node has, with the shapes of wazo-platform/xivo-dao's models (the schema
 * xivo-manage-db creates) — written here as plain SQL. Kept Wazo's where it has them:
 *   - the tenant ⇄ endpoint_sip cycle (endpoint_sip.tenant_uuid → tenant; tenant's five
 *     *_sip_template_uuid → endpoint_sip, ON DELETE SET NULL);
 *   - endpoint_sip's sections and options as rows (the biggest table of a real node), templates;
 *   - userfeatures with its user-state columns (enablednd, enableunc/destunc, enablebusy/destbusy,
 *     enablerna/destrna, incallfilter, enablexfer, …) as Integer flags, as Wazo has them;
 *   - func keys: func_key (id, destination_type_id) referenced by the func_key_dest_* tables,
 *     each pinned to its destination type by a CHECK;
 *   - enums (extenumbers_type, dialaction_*, queue_category, …), varchar[][] options, text[] ACLs,
 *     dash-named columns (queue."monitor-type"), composite primary keys, text primary keys.
 * Not Wazo's, added for shapes a replication must survive on any PostgreSQL:
 *   - the tenant → endpoint_sip constraints are DEFERRABLE INITIALLY DEFERRED (Wazo's are immediate);
 *   - identity columns (agentfeatures ALWAYS, paging BY DEFAULT; Wazo uses serial);
 *   - a stored generated column (userfeatures.fullname; Wazo computes it in its queries);
 *   - a table without a primary key (plugin_note, as a locally installed plugin may add; every
 *     table of Wazo's own models has one), with duplicate rows;
 *   - a free sequence owned by no column (provisioning_seq).
 * Unicode names (accents, CJK, emoji) and a few large bytea values (attachment.file) are in the data.
 */

export const FULL_REPLICATED_TABLES = [
  "accesswebservice",
  "agentfeatures",
  "agentglobalparams",
  "agentqueueskill",
  "application",
  "application_dest_node",
  "asterisk_file",
  "asterisk_file_section",
  "asterisk_file_variable",
  "attachment",
  "blocklist",
  "blocklist_number",
  "blocklist_user",
  "callerid",
  "callfilter",
  "callfiltermember",
  "conference",
  "context",
  "contextinclude",
  "contextnumbers",
  "contexttype",
  "dialaction",
  "dialpattern",
  "endpoint_sccp",
  "endpoint_sip",
  "endpoint_sip_section",
  "endpoint_sip_section_option",
  "endpoint_sip_template",
  "extensions",
  "external_app",
  "feature_extension",
  "features",
  "func_key",
  "func_key_dest_custom",
  "func_key_dest_forward",
  "func_key_dest_group",
  "func_key_dest_queue",
  "func_key_dest_service",
  "func_key_dest_user",
  "func_key_destination_type",
  "func_key_mapping",
  "func_key_template",
  "func_key_type",
  "general",
  "groupfeatures",
  "incall",
  "infos",
  "ingress_http",
  "ivr",
  "ivr_choice",
  "line_extension",
  "linefeatures",
  "moh",
  "outcall",
  "outcalltrunk",
  "paging",
  "paginguser",
  "parking_lot",
  "phone_number",
  "pickup",
  "pickupmember",
  "pjsip_transport",
  "pjsip_transport_option",
  "plugin_note",
  "provisioning",
  "queue",
  "queuefeatures",
  "queuemember",
  "queueskill",
  "queueskillrule",
  "rightcall",
  "rightcallexten",
  "rightcallmember",
  "sccpdevice",
  "sccpgeneralsettings",
  "sccpline",
  "schedule",
  "schedule_time",
  "schedulepath",
  "switchboard",
  "switchboard_member_user",
  "tenant",
  "trunkfeatures",
  "user_external_app",
  "user_line",
  "usercustom",
  "userfeatures",
  "voicemail",
] as const;

/** What Wazo leaves out (config.ts WAZO_EXCLUDE): local history and per-host setup, with rows; the same names as the compact fixture's. */
export const FULL_EXCLUDED_TABLES = EXCLUDED_TABLES;

export const FULL_TABLES = [...FULL_REPLICATED_TABLES, ...FULL_EXCLUDED_TABLES] as const;

/**
 * One func_key_dest_* table: pinned to its destination type by a CHECK, and gone with its func
 * key (the (id, destination_type_id) foreign key), as each of Wazo's is.
 */
const funcKeyDest = (name: string, typeId: number, columns: string, key: string | null) => `
CREATE TABLE func_key_dest_${name} (
  func_key_id integer NOT NULL,
  destination_type_id integer NOT NULL DEFAULT ${typeId} CHECK (destination_type_id = ${typeId}),
  ${columns},
  PRIMARY KEY (func_key_id, destination_type_id${key ? `, ${key}` : ""}),
  FOREIGN KEY (func_key_id, destination_type_id) REFERENCES func_key(id, destination_type_id) ON DELETE CASCADE
);`;

const SCHEMA = `
CREATE TYPE extenumbers_type AS ENUM ('extenfeatures', 'featuremap', 'generalfeatures', 'group', 'incall', 'meetme', 'outcall', 'queue', 'user', 'voicemenu', 'conference', 'parking');
CREATE TYPE dialaction_event AS ENUM ('answer', 'noanswer', 'congestion', 'busy', 'chanunavail', 'inschedule', 'outschedule', 'qwaittime', 'qwaitratio');
CREATE TYPE dialaction_category AS ENUM ('callfilter', 'group', 'incall', 'queue', 'schedule', 'user', 'outcall', 'ivr', 'ivr_choice', 'switchboard');
CREATE TYPE dialaction_action AS ENUM ('none', 'endcall:busy', 'endcall:congestion', 'endcall:hangup', 'user', 'group', 'queue', 'voicemail', 'extension', 'outcall', 'application:callbackdisa', 'application:disa', 'application:directory', 'application:faxtomail', 'application:voicemailmain', 'application:password', 'sound', 'custom', 'ivr', 'conference', 'switchboard', 'application:custom');
CREATE TYPE generic_bsfilter AS ENUM ('no', 'boss', 'secretary');
CREATE TYPE callfilter_type AS ENUM ('bosssecretary');
CREATE TYPE callfilter_bosssecretary AS ENUM ('bossfirst-serial', 'bossfirst-simult', 'secretary-serial', 'secretary-simult', 'all');
CREATE TYPE callfilter_callfrom AS ENUM ('internal', 'external', 'all');
CREATE TYPE callfiltermember_type AS ENUM ('user');
CREATE TYPE queue_category AS ENUM ('group', 'queue');
CREATE TYPE queue_monitor_type AS ENUM ('no', 'mixmonitor');
CREATE TYPE queuemember_usertype AS ENUM ('agent', 'user');
CREATE TYPE pickup_category AS ENUM ('member', 'pickup');
CREATE TYPE pickup_membertype AS ENUM ('group', 'queue', 'user');
CREATE TYPE rightcallmember_type AS ENUM ('group', 'outcall', 'user');
CREATE TYPE schedule_time_mode AS ENUM ('opened', 'closed');
CREATE TYPE schedulepath_type AS ENUM ('group', 'queue', 'user', 'incall', 'outcall', 'voicemenu');
CREATE TYPE endpoint_sip_section_type AS ENUM ('aor', 'auth', 'endpoint', 'identify', 'outbound_auth', 'registration_outbound_auth', 'registration');
CREATE TYPE contextnumbers_type AS ENUM ('user', 'group', 'queue', 'meetme', 'incall', 'conference');
CREATE TYPE callerid_mode AS ENUM ('prepend', 'overwrite', 'append');
CREATE TYPE callerid_type AS ENUM ('callfilter', 'incall', 'group', 'queue');
CREATE TYPE usercustom_category AS ENUM ('user', 'trunk');
CREATE TYPE moh_mode AS ENUM ('custom', 'files', 'mp3');
CREATE TYPE phone_number_main AS ENUM ('main');

CREATE TABLE tenant (
  uuid varchar(36) PRIMARY KEY DEFAULT gen_random_uuid()::text,
  sip_templates_generated boolean NOT NULL DEFAULT false,
  global_sip_template_uuid uuid,
  webrtc_sip_template_uuid uuid,
  webrtc_video_sip_template_uuid uuid,
  registration_trunk_sip_template_uuid uuid,
  twilio_trunk_sip_template_uuid uuid
);

CREATE TABLE contexttype (
  id serial PRIMARY KEY,
  name varchar(40) NOT NULL UNIQUE,
  commented integer,
  deletable integer,
  description text
);

CREATE TABLE context (
  id serial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  name varchar(79) NOT NULL UNIQUE,
  displayname varchar(128),
  contexttype varchar(40) NOT NULL DEFAULT 'internal',
  commented integer NOT NULL DEFAULT 0,
  description text,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE
);
CREATE INDEX context__idx__tenant_uuid ON context (tenant_uuid);

CREATE TABLE contextinclude (
  context varchar(79) NOT NULL REFERENCES context(name) ON DELETE CASCADE,
  include varchar(79) NOT NULL REFERENCES context(name) ON DELETE CASCADE,
  priority integer NOT NULL DEFAULT 0,
  PRIMARY KEY (context, include)
);

CREATE TABLE contextnumbers (
  context varchar(79) NOT NULL,
  type contextnumbers_type NOT NULL,
  numberbeg varchar(16) NOT NULL DEFAULT '',
  numberend varchar(16) NOT NULL DEFAULT '',
  didlength integer NOT NULL DEFAULT 0,
  PRIMARY KEY (context, type, numberbeg, numberend)
);

CREATE TABLE pjsip_transport (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE
);

CREATE TABLE pjsip_transport_option (
  id serial PRIMARY KEY,
  key text NOT NULL,
  value text NOT NULL,
  pjsip_transport_uuid uuid NOT NULL REFERENCES pjsip_transport(uuid) ON DELETE CASCADE
);

CREATE TABLE endpoint_sip (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  label text,
  name text NOT NULL UNIQUE,
  asterisk_id text,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  transport_uuid uuid REFERENCES pjsip_transport(uuid),
  template boolean DEFAULT false
);

-- The cycle. Wazo names these constraints so that DROP can break it; deferred here (see the top).
ALTER TABLE tenant
  ADD CONSTRAINT tenant_global_sip_template_uuid_fkey FOREIGN KEY (global_sip_template_uuid) REFERENCES endpoint_sip(uuid) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
  ADD CONSTRAINT tenant_webrtc_sip_template_uuid_fkey FOREIGN KEY (webrtc_sip_template_uuid) REFERENCES endpoint_sip(uuid) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
  ADD CONSTRAINT tenant_webrtc_video_sip_template_uuid_fkey FOREIGN KEY (webrtc_video_sip_template_uuid) REFERENCES endpoint_sip(uuid) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
  ADD CONSTRAINT tenant_registration_trunk_sip_template_uuid_fkey FOREIGN KEY (registration_trunk_sip_template_uuid) REFERENCES endpoint_sip(uuid) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
  ADD CONSTRAINT tenant_twilio_trunk_sip_template_uuid_fkey FOREIGN KEY (twilio_trunk_sip_template_uuid) REFERENCES endpoint_sip(uuid) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE endpoint_sip_template (
  child_uuid uuid NOT NULL REFERENCES endpoint_sip(uuid) ON DELETE CASCADE,
  parent_uuid uuid NOT NULL REFERENCES endpoint_sip(uuid) ON DELETE CASCADE,
  priority integer,
  PRIMARY KEY (child_uuid, parent_uuid)
);

CREATE TABLE endpoint_sip_section (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type endpoint_sip_section_type NOT NULL,
  endpoint_sip_uuid uuid NOT NULL REFERENCES endpoint_sip(uuid) ON DELETE CASCADE,
  UNIQUE (type, endpoint_sip_uuid)
);
CREATE INDEX endpoint_sip_section__idx__endpoint_sip_uuid ON endpoint_sip_section (endpoint_sip_uuid);

CREATE TABLE endpoint_sip_section_option (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  key text NOT NULL,
  value text NOT NULL,
  endpoint_sip_section_uuid uuid NOT NULL REFERENCES endpoint_sip_section(uuid) ON DELETE CASCADE
);
CREATE INDEX endpoint_sip_section_option__idx__endpoint_sip_section_uuid ON endpoint_sip_section_option (endpoint_sip_section_uuid);

CREATE TABLE endpoint_sccp (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  options varchar[][] NOT NULL DEFAULT '{}'
);

CREATE TABLE usercustom (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(40),
  context varchar(39),
  interface varchar(128) NOT NULL,
  intfsuffix varchar(32) NOT NULL DEFAULT '',
  commented integer NOT NULL DEFAULT 0,
  protocol varchar(10) NOT NULL DEFAULT 'custom',
  category usercustom_category NOT NULL,
  UNIQUE (interface, intfsuffix, category)
);

CREATE TABLE func_key_template (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128),
  private boolean NOT NULL DEFAULT false
);

CREATE TABLE voicemail (
  uniqueid serial PRIMARY KEY,
  context varchar(79) NOT NULL REFERENCES context(name),
  mailbox varchar(40) NOT NULL DEFAULT '',
  password varchar(80),
  fullname varchar(80) NOT NULL DEFAULT '',
  email varchar(80),
  pager varchar(80),
  language varchar(20),
  tz varchar(80),
  attach integer,
  deletevoicemail integer NOT NULL DEFAULT 0,
  maxmsg integer,
  skipcheckpass integer NOT NULL DEFAULT 0,
  options varchar[][] NOT NULL DEFAULT '{}',
  commented integer NOT NULL DEFAULT 0,
  UNIQUE (mailbox, context)
);

CREATE TABLE userfeatures (
  id serial PRIMARY KEY,
  uuid varchar(38) NOT NULL CONSTRAINT userfeatures_uuid UNIQUE,
  firstname varchar(128) NOT NULL DEFAULT '',
  lastname varchar(128) NOT NULL DEFAULT '',
  fullname text GENERATED ALWAYS AS (btrim(firstname || ' ' || lastname)) STORED,
  email varchar(254) CONSTRAINT userfeatures_email UNIQUE,
  voicemailid integer REFERENCES voicemail(uniqueid),
  agentid integer,
  pictureid integer,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  callerid varchar(160),
  ringseconds integer NOT NULL DEFAULT 30,
  simultcalls integer NOT NULL DEFAULT 5,
  enableclient integer NOT NULL DEFAULT 0,
  loginclient varchar(254) NOT NULL DEFAULT '',
  passwdclient varchar(64) NOT NULL DEFAULT '',
  enablehint integer NOT NULL DEFAULT 1,
  enablevoicemail integer NOT NULL DEFAULT 0,
  dtmf_hangup integer NOT NULL DEFAULT 0,
  enableonlinerec integer NOT NULL DEFAULT 0,
  call_record_outgoing_external_enabled boolean NOT NULL DEFAULT false,
  call_record_outgoing_internal_enabled boolean NOT NULL DEFAULT false,
  call_record_incoming_external_enabled boolean NOT NULL DEFAULT false,
  call_record_incoming_internal_enabled boolean NOT NULL DEFAULT false,
  ${USER_STATE_COLUMNS}
  musiconhold varchar(128) NOT NULL DEFAULT '',
  outcallerid varchar(80) NOT NULL DEFAULT '',
  mobilephonenumber varchar(128) NOT NULL DEFAULT '',
  bsfilter generic_bsfilter NOT NULL DEFAULT 'no',
  preprocess_subroutine varchar(79),
  timezone varchar(128),
  language varchar(20),
  ringintern varchar(64),
  ringextern varchar(64),
  ringgroup varchar(64),
  ringforward varchar(64),
  rightcallcode varchar(16),
  commented integer NOT NULL DEFAULT 0,
  func_key_template_id integer REFERENCES func_key_template(id) ON DELETE SET NULL,
  func_key_private_template_id integer NOT NULL UNIQUE REFERENCES func_key_template(id),
  subscription_type integer NOT NULL DEFAULT 0,
  created_at timestamp DEFAULT (now() AT TIME ZONE 'utc'),
  userfield varchar(128) NOT NULL DEFAULT '',
  description text NOT NULL DEFAULT ''
);
CREATE INDEX userfeatures__idx__firstname ON userfeatures (firstname);
CREATE INDEX userfeatures__idx__lastname ON userfeatures (lastname);
CREATE INDEX userfeatures__idx__voicemailid ON userfeatures (voicemailid);
CREATE INDEX userfeatures__idx__tenant_uuid ON userfeatures (tenant_uuid);

CREATE TABLE linefeatures (
  id serial PRIMARY KEY,
  device varchar(32),
  configregistrar varchar(128),
  name varchar(128),
  number varchar(40),
  context varchar(79) NOT NULL REFERENCES context(name),
  provisioningid integer NOT NULL,
  num integer DEFAULT 1,
  ipfrom varchar(15),
  commented integer NOT NULL DEFAULT 0,
  description text,
  endpoint_sip_uuid uuid REFERENCES endpoint_sip(uuid) ON DELETE SET NULL,
  endpoint_sccp_id integer REFERENCES endpoint_sccp(id) ON DELETE SET NULL,
  endpoint_custom_id integer REFERENCES usercustom(id) ON DELETE SET NULL,
  application_uuid varchar(36),
  registrar varchar(128),
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  CONSTRAINT linefeatures_endpoints CHECK ((endpoint_sip_uuid IS NOT NULL)::int + (endpoint_sccp_id IS NOT NULL)::int + (endpoint_custom_id IS NOT NULL)::int <= 1)
);
CREATE INDEX linefeatures__idx__device ON linefeatures (device);
CREATE INDEX linefeatures__idx__context ON linefeatures (context);

CREATE TABLE user_line (
  user_id integer NOT NULL REFERENCES userfeatures(id),
  line_id integer NOT NULL REFERENCES linefeatures(id) ON DELETE CASCADE,
  main_user boolean NOT NULL,
  main_line boolean NOT NULL,
  PRIMARY KEY (user_id, line_id)
);

CREATE TABLE extensions (
  id serial PRIMARY KEY,
  commented integer NOT NULL DEFAULT 0,
  context varchar(79) NOT NULL DEFAULT '',
  exten varchar(40) NOT NULL DEFAULT '',
  type extenumbers_type NOT NULL,
  typeval varchar(255) NOT NULL DEFAULT '',
  UNIQUE (exten, context)
);
CREATE INDEX extensions__idx__type_typeval ON extensions (type, typeval);

CREATE TABLE line_extension (
  line_id integer NOT NULL REFERENCES linefeatures(id) ON DELETE CASCADE,
  extension_id integer NOT NULL REFERENCES extensions(id) ON DELETE CASCADE,
  main_extension boolean NOT NULL,
  PRIMARY KEY (line_id, extension_id)
);

CREATE TABLE feature_extension (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  enabled boolean NOT NULL DEFAULT true,
  exten varchar(40) NOT NULL UNIQUE,
  feature varchar(255) NOT NULL
);

CREATE TABLE features (
  id serial PRIMARY KEY,
  filename varchar(128) NOT NULL,
  category varchar(128) NOT NULL,
  var_name varchar(128) NOT NULL,
  var_val varchar(255),
  commented integer NOT NULL DEFAULT 0
);

CREATE TABLE asterisk_file (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE
);
CREATE TABLE asterisk_file_section (
  id serial PRIMARY KEY,
  name text NOT NULL,
  priority integer,
  asterisk_file_id integer NOT NULL REFERENCES asterisk_file(id) ON DELETE CASCADE,
  UNIQUE (name, asterisk_file_id)
);
CREATE TABLE asterisk_file_variable (
  id serial PRIMARY KEY,
  key text NOT NULL,
  value text,
  priority integer,
  asterisk_file_section_id integer NOT NULL REFERENCES asterisk_file_section(id) ON DELETE CASCADE
);

CREATE TABLE agentfeatures (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  numgroup integer NOT NULL DEFAULT 1,
  firstname varchar(128) NOT NULL DEFAULT '',
  lastname varchar(128) NOT NULL DEFAULT '',
  number varchar(40) NOT NULL,
  passwd varchar(128) NOT NULL DEFAULT '',
  context varchar(79) NOT NULL,
  language varchar(20) NOT NULL DEFAULT '',
  autologoff integer,
  "group" varchar(255),
  description text NOT NULL DEFAULT '',
  preprocess_subroutine varchar(79),
  UNIQUE (number, tenant_uuid)
);

CREATE TABLE agentglobalparams (
  id serial PRIMARY KEY,
  category varchar(128) NOT NULL,
  option_name varchar(255) NOT NULL,
  option_value varchar(255)
);

CREATE TABLE queueskill (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(64) NOT NULL DEFAULT '',
  description text,
  printscreen varchar(5),
  UNIQUE (name, tenant_uuid)
);

CREATE TABLE agentqueueskill (
  agentid integer NOT NULL REFERENCES agentfeatures(id) ON DELETE CASCADE,
  skillid integer NOT NULL REFERENCES queueskill(id) ON DELETE CASCADE,
  weight integer NOT NULL DEFAULT 0,
  PRIMARY KEY (agentid, skillid)
);

CREATE TABLE queueskillrule (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(64) NOT NULL DEFAULT '',
  rule text
);

CREATE TABLE queue (
  name varchar(128) PRIMARY KEY,
  musicclass varchar(128),
  announce varchar(128),
  context varchar(79),
  timeout integer DEFAULT 0,
  "monitor-type" queue_monitor_type,
  "monitor-format" varchar(128),
  "queue-youarenext" varchar(128),
  "queue-thereare" varchar(128),
  "announce-frequency" integer,
  "announce-holdtime" varchar(4),
  retry integer,
  wrapuptime integer,
  maxlen integer,
  servicelevel integer,
  strategy varchar(11),
  joinempty varchar(255),
  leavewhenempty varchar(255),
  ringinuse boolean NOT NULL DEFAULT false,
  reportholdtime integer DEFAULT 0,
  memberdelay integer,
  weight integer,
  timeoutrestart integer DEFAULT 0,
  commented integer NOT NULL DEFAULT 0,
  category queue_category NOT NULL,
  timeoutpriority varchar(10) NOT NULL DEFAULT 'conf',
  autofill integer NOT NULL DEFAULT 1,
  autopause varchar(3) NOT NULL DEFAULT 'no',
  setinterfacevar integer NOT NULL DEFAULT 0,
  setqueueentryvar integer NOT NULL DEFAULT 0,
  setqueuevar integer NOT NULL DEFAULT 0,
  membermacro varchar(1024),
  "min-announce-frequency" integer NOT NULL DEFAULT 60,
  "random-periodic-announce" integer NOT NULL DEFAULT 0,
  "announce-position" varchar(1024) NOT NULL DEFAULT 'yes',
  "announce-position-limit" integer NOT NULL DEFAULT 5,
  defaultrule varchar(1024),
  enabled boolean NOT NULL DEFAULT true
);
CREATE INDEX queue__idx__category ON queue (category);

CREATE TABLE groupfeatures (
  id serial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL UNIQUE,
  label text NOT NULL,
  transfer_user integer NOT NULL DEFAULT 0,
  transfer_call integer NOT NULL DEFAULT 0,
  write_caller integer NOT NULL DEFAULT 0,
  write_calling integer NOT NULL DEFAULT 0,
  ignore_forward integer NOT NULL DEFAULT 1,
  timeout integer,
  preprocess_subroutine varchar(79),
  mark_answered_elsewhere integer NOT NULL DEFAULT 0,
  dtmf_record_toggle boolean NOT NULL DEFAULT false
);

CREATE TABLE queuefeatures (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL UNIQUE,
  displayname varchar(128) NOT NULL,
  number varchar(40) DEFAULT '',
  context varchar(79),
  data_quality integer NOT NULL DEFAULT 0,
  dtmf_hangup_callee_enabled integer NOT NULL DEFAULT 0,
  dtmf_hangup_caller_enabled integer NOT NULL DEFAULT 0,
  dtmf_transfer_callee_enabled integer NOT NULL DEFAULT 0,
  dtmf_transfer_caller_enabled integer NOT NULL DEFAULT 0,
  dtmf_record_callee_enabled integer NOT NULL DEFAULT 0,
  dtmf_record_caller_enabled integer NOT NULL DEFAULT 0,
  retries integer NOT NULL DEFAULT 0,
  ring integer NOT NULL DEFAULT 0,
  transfer_user integer NOT NULL DEFAULT 0,
  transfer_call integer NOT NULL DEFAULT 0,
  write_caller integer NOT NULL DEFAULT 0,
  write_calling integer NOT NULL DEFAULT 0,
  ignore_forward integer NOT NULL DEFAULT 1,
  url varchar(255) NOT NULL DEFAULT '',
  announceoverride varchar(128) NOT NULL DEFAULT '',
  timeout integer DEFAULT 0,
  preprocess_subroutine varchar(79),
  announce_holdtime integer NOT NULL DEFAULT 0,
  waittime integer,
  waitratio double precision,
  mark_answered_elsewhere integer NOT NULL DEFAULT 0,
  music_on_hold varchar(128)
);

CREATE TABLE queuemember (
  queue_name varchar(128) NOT NULL,
  interface varchar(128) NOT NULL,
  penalty integer NOT NULL DEFAULT 0,
  commented integer NOT NULL DEFAULT 0,
  usertype queuemember_usertype NOT NULL,
  userid integer NOT NULL,
  channel varchar(25) NOT NULL,
  category queue_category NOT NULL,
  position integer NOT NULL DEFAULT 0,
  PRIMARY KEY (queue_name, interface),
  UNIQUE (queue_name, channel, interface, usertype, userid, category, position)
);
CREATE INDEX queuemember__idx__userid ON queuemember (userid);

CREATE TABLE incall (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  preprocess_subroutine varchar(79),
  greeting_sound text,
  commented integer NOT NULL DEFAULT 0,
  description text NOT NULL DEFAULT ''
);

CREATE TABLE callerid (
  mode callerid_mode,
  callerdisplay varchar(80) NOT NULL DEFAULT '',
  type callerid_type NOT NULL,
  typeval integer NOT NULL,
  PRIMARY KEY (type, typeval)
);

CREATE TABLE dialaction (
  event dialaction_event NOT NULL,
  category dialaction_category NOT NULL,
  categoryval varchar(128) NOT NULL DEFAULT '',
  action dialaction_action NOT NULL,
  actionarg1 varchar(255),
  actionarg2 varchar(255),
  linked integer NOT NULL DEFAULT 0,
  PRIMARY KEY (event, category, categoryval)
);
CREATE INDEX dialaction__idx__action_actionarg1 ON dialaction (action, actionarg1);

CREATE TABLE outcall (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL,
  label text NOT NULL,
  internal integer NOT NULL DEFAULT 0,
  preprocess_subroutine varchar(79),
  hangupringtime integer NOT NULL DEFAULT 0,
  commented integer NOT NULL DEFAULT 0,
  description text
);

CREATE TABLE trunkfeatures (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  endpoint_sip_uuid uuid REFERENCES endpoint_sip(uuid) ON DELETE SET NULL,
  endpoint_custom_id integer REFERENCES usercustom(id) ON DELETE SET NULL,
  registercommented integer NOT NULL DEFAULT 0,
  description text,
  context varchar(79),
  outgoing_caller_id_format varchar(16) NOT NULL DEFAULT '+E164',
  twilio_incoming boolean NOT NULL DEFAULT false,
  label text
);

CREATE TABLE outcalltrunk (
  outcallid integer NOT NULL REFERENCES outcall(id) ON DELETE CASCADE,
  trunkfeaturesid integer NOT NULL REFERENCES trunkfeatures(id) ON DELETE CASCADE,
  priority integer NOT NULL DEFAULT 0,
  PRIMARY KEY (outcallid, trunkfeaturesid)
);

CREATE TABLE dialpattern (
  id serial PRIMARY KEY,
  type varchar(32) NOT NULL,
  typeid integer NOT NULL,
  externprefix varchar(64),
  prefix varchar(32),
  exten varchar(40) NOT NULL,
  stripnum integer,
  callerid varchar(80)
);

CREATE TABLE func_key_type (id serial PRIMARY KEY, name varchar(128) NOT NULL UNIQUE);
CREATE TABLE func_key_destination_type (id serial PRIMARY KEY, name varchar(128) NOT NULL UNIQUE);

CREATE TABLE func_key (
  id serial PRIMARY KEY,
  type_id integer NOT NULL REFERENCES func_key_type(id),
  destination_type_id integer NOT NULL REFERENCES func_key_destination_type(id),
  UNIQUE (id, destination_type_id)
);

CREATE TABLE func_key_mapping (
  template_id integer NOT NULL REFERENCES func_key_template(id) ON DELETE CASCADE,
  func_key_id integer NOT NULL,
  destination_type_id integer NOT NULL,
  label varchar(128),
  position integer NOT NULL CHECK (position > 0),
  blf boolean NOT NULL DEFAULT true,
  inherited boolean NOT NULL DEFAULT true,
  PRIMARY KEY (template_id, func_key_id),
  UNIQUE (template_id, position),
  FOREIGN KEY (func_key_id, destination_type_id) REFERENCES func_key(id, destination_type_id) ON DELETE CASCADE
);

${funcKeyDest("user", 1, "user_id integer NOT NULL REFERENCES userfeatures(id) ON DELETE CASCADE", "user_id")}
${funcKeyDest("group", 2, "group_id integer NOT NULL REFERENCES groupfeatures(id) ON DELETE CASCADE", "group_id")}
${funcKeyDest("queue", 3, "queue_id integer NOT NULL REFERENCES queuefeatures(id) ON DELETE CASCADE", "queue_id")}
${funcKeyDest("service", 5, "feature_extension_uuid uuid NOT NULL REFERENCES feature_extension(uuid)", "feature_extension_uuid")}
${funcKeyDest("forward", 6, "feature_extension_uuid uuid NOT NULL REFERENCES feature_extension(uuid),\n  number varchar(40)", "feature_extension_uuid")}
${funcKeyDest("custom", 10, "exten varchar(40) NOT NULL", null)}

CREATE TABLE callfilter (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL DEFAULT '',
  type callfilter_type NOT NULL,
  bosssecretary callfilter_bosssecretary,
  callfrom callfilter_callfrom,
  ringseconds integer NOT NULL DEFAULT 0,
  popup integer NOT NULL DEFAULT 0,
  description text NOT NULL DEFAULT '',
  commented integer NOT NULL DEFAULT 0,
  UNIQUE (name, tenant_uuid)
);

-- "active" is a user's own switch (the boss/secretary filter): user state, like userfeatures' flags.
CREATE TABLE callfiltermember (
  id serial PRIMARY KEY,
  callfilterid integer NOT NULL DEFAULT 0 REFERENCES callfilter(id) ON DELETE CASCADE,
  type callfiltermember_type NOT NULL,
  typeval varchar(128) NOT NULL DEFAULT '0',
  ringseconds integer NOT NULL DEFAULT 0,
  priority integer NOT NULL DEFAULT 0,
  bstype generic_bsfilter NOT NULL,
  active integer NOT NULL DEFAULT 0,
  UNIQUE (callfilterid, type, typeval)
);

CREATE TABLE pickup (
  id integer PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL UNIQUE,
  commented integer NOT NULL DEFAULT 0,
  description text NOT NULL DEFAULT ''
);
CREATE TABLE pickupmember (
  pickupid integer NOT NULL REFERENCES pickup(id) ON DELETE CASCADE,
  category pickup_category NOT NULL,
  membertype pickup_membertype NOT NULL,
  memberid integer NOT NULL,
  PRIMARY KEY (pickupid, category, membertype, memberid)
);

CREATE TABLE rightcall (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL DEFAULT '',
  passwd varchar(40) NOT NULL DEFAULT '',
  "authorization" integer NOT NULL DEFAULT 0,
  commented integer NOT NULL DEFAULT 0,
  description text,
  UNIQUE (name, tenant_uuid)
);
CREATE TABLE rightcallexten (
  id serial PRIMARY KEY,
  rightcallid integer NOT NULL DEFAULT 0 REFERENCES rightcall(id) ON DELETE CASCADE,
  exten varchar(40) NOT NULL DEFAULT '',
  UNIQUE (rightcallid, exten)
);
CREATE TABLE rightcallmember (
  id serial PRIMARY KEY,
  rightcallid integer NOT NULL DEFAULT 0 REFERENCES rightcall(id) ON DELETE CASCADE,
  type rightcallmember_type NOT NULL,
  typeval varchar(128) NOT NULL DEFAULT '0',
  UNIQUE (rightcallid, type, typeval)
);

CREATE TABLE schedule (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(255),
  timezone varchar(128),
  fallback_action dialaction_action NOT NULL DEFAULT 'none',
  fallback_actionid varchar(255),
  fallback_actionargs varchar(255),
  description text,
  commented integer NOT NULL DEFAULT 0
);
CREATE TABLE schedule_time (
  id serial PRIMARY KEY,
  schedule_id integer REFERENCES schedule(id) ON DELETE CASCADE,
  mode schedule_time_mode NOT NULL DEFAULT 'opened',
  hours varchar(512),
  weekdays varchar(512),
  monthdays varchar(512),
  months varchar(512),
  action dialaction_action,
  actionid varchar(255),
  actionargs varchar(255),
  commented integer NOT NULL DEFAULT 0
);
CREATE TABLE schedulepath (
  schedule_id integer NOT NULL REFERENCES schedule(id) ON DELETE CASCADE,
  path schedulepath_type NOT NULL,
  pathid integer NOT NULL,
  "order" integer NOT NULL,
  PRIMARY KEY (schedule_id, path, pathid)
);

CREATE TABLE moh (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name text NOT NULL UNIQUE,
  label text,
  mode moh_mode NOT NULL,
  application text,
  sort text
);

CREATE TABLE paging (
  id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  number varchar(32),
  name varchar(128),
  duplex integer NOT NULL DEFAULT 0,
  ignore integer NOT NULL DEFAULT 0,
  record integer NOT NULL DEFAULT 0,
  quiet integer NOT NULL DEFAULT 0,
  timeout integer NOT NULL DEFAULT 30,
  announcement_file varchar(64),
  announcement_play integer NOT NULL DEFAULT 0,
  announcement_caller integer NOT NULL DEFAULT 0,
  commented integer NOT NULL DEFAULT 0,
  description text,
  UNIQUE (number)
);
CREATE TABLE paginguser (
  pagingid integer NOT NULL REFERENCES paging(id) ON DELETE CASCADE,
  userfeaturesid integer NOT NULL REFERENCES userfeatures(id) ON DELETE CASCADE,
  caller integer NOT NULL,
  PRIMARY KEY (pagingid, userfeaturesid, caller)
);

CREATE TABLE conference (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128),
  preprocess_subroutine varchar(79),
  max_users integer NOT NULL DEFAULT 50,
  record boolean NOT NULL DEFAULT false,
  pin varchar(80),
  admin_pin varchar(80),
  quiet_join_leave boolean NOT NULL DEFAULT false,
  announce_join_leave boolean NOT NULL DEFAULT false,
  announce_user_count boolean NOT NULL DEFAULT false,
  announce_only_user boolean NOT NULL DEFAULT true,
  music_on_hold varchar(128)
);

CREATE TABLE parking_lot (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128),
  slots_start varchar(40) NOT NULL,
  slots_end varchar(40) NOT NULL,
  timeout integer,
  music_on_hold varchar(128)
);

CREATE TABLE ivr (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL,
  greeting_sound text,
  menu_sound text NOT NULL,
  invalid_sound text,
  abort_sound text,
  timeout integer NOT NULL DEFAULT 5,
  max_tries integer NOT NULL DEFAULT 3,
  description text
);
CREATE TABLE ivr_choice (
  id serial PRIMARY KEY,
  ivr_id integer NOT NULL REFERENCES ivr(id) ON DELETE CASCADE,
  exten varchar(40) NOT NULL
);

CREATE TABLE switchboard (
  uuid varchar(38) PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128) NOT NULL,
  hold_moh_uuid uuid REFERENCES moh(uuid) ON DELETE SET NULL,
  queue_moh_uuid uuid REFERENCES moh(uuid) ON DELETE SET NULL,
  timeout integer
);
CREATE TABLE switchboard_member_user (
  switchboard_uuid varchar(38) NOT NULL REFERENCES switchboard(uuid),
  user_uuid varchar(38) NOT NULL REFERENCES userfeatures(uuid),
  PRIMARY KEY (switchboard_uuid, user_uuid)
);

CREATE TABLE application (
  uuid varchar(36) PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(128)
);
CREATE TABLE application_dest_node (
  application_uuid varchar(36) PRIMARY KEY REFERENCES application(uuid) ON DELETE CASCADE,
  type_ varchar(32) NOT NULL,
  music_on_hold varchar(128),
  answer boolean NOT NULL DEFAULT false
);

CREATE TABLE sccpline (
  id serial PRIMARY KEY,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  name varchar(80) NOT NULL,
  context varchar(79) NOT NULL,
  cid_name varchar(80) NOT NULL,
  cid_num varchar(80) NOT NULL,
  disallow varchar(100),
  allow text,
  protocol varchar(10) NOT NULL DEFAULT 'sccp',
  commented integer NOT NULL DEFAULT 0
);
CREATE TABLE sccpdevice (
  id serial PRIMARY KEY,
  name varchar(80) NOT NULL,
  device varchar(80) NOT NULL,
  line varchar(80) NOT NULL DEFAULT '',
  voicemail varchar(80) NOT NULL DEFAULT ''
);
CREATE TABLE sccpgeneralsettings (
  id serial PRIMARY KEY,
  option_name varchar(80) NOT NULL,
  option_value varchar(80) NOT NULL
);

CREATE TABLE accesswebservice (
  id serial PRIMARY KEY,
  uuid varchar(38) NOT NULL UNIQUE,
  name varchar(64) NOT NULL DEFAULT '' UNIQUE,
  login varchar(64),
  passwd varchar(64),
  host varchar(255),
  obj text NOT NULL DEFAULT '',
  acl text[],
  commented integer NOT NULL DEFAULT 0,
  description text NOT NULL DEFAULT ''
);

-- Attachments (CTI sheets, greetings): the large binary values of the database.
CREATE TABLE attachment (
  id serial PRIMARY KEY,
  name varchar(64) NOT NULL,
  object_type varchar(16) NOT NULL,
  object_id integer NOT NULL,
  file bytea,
  size integer NOT NULL,
  mime varchar(64) NOT NULL,
  UNIQUE (object_type, object_id)
);

CREATE TABLE general (
  id serial PRIMARY KEY,
  timezone varchar(128),
  exchange_trunkfeatures_id integer REFERENCES trunkfeatures(id) ON DELETE SET NULL,
  dahdi_monitor_ports varchar(255),
  max_calls integer,
  live_reload_enabled boolean NOT NULL DEFAULT true
);

CREATE TABLE infos (
  uuid varchar(38) PRIMARY KEY,
  wazo_version varchar(64) NOT NULL,
  live_reload_enabled boolean NOT NULL DEFAULT true,
  timezone varchar(128),
  configured boolean NOT NULL DEFAULT false
);

CREATE TABLE provisioning (
  id serial PRIMARY KEY,
  net4_ip varchar(39),
  net4_ip_rest varchar(39) NOT NULL,
  username varchar(32) NOT NULL,
  password varchar(32) NOT NULL,
  dhcp_integration integer NOT NULL DEFAULT 0,
  rest_port integer NOT NULL,
  private integer NOT NULL DEFAULT 0,
  secure integer NOT NULL DEFAULT 0,
  http_port integer NOT NULL,
  http_base_url varchar(255)
);

CREATE TABLE ingress_http (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_uuid varchar(36) NOT NULL UNIQUE REFERENCES tenant(uuid) ON DELETE CASCADE,
  uri text NOT NULL
);

CREATE TABLE external_app (
  name text NOT NULL,
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  label text,
  configuration jsonb,
  PRIMARY KEY (name, tenant_uuid)
);
CREATE TABLE user_external_app (
  name text NOT NULL,
  user_uuid varchar(38) NOT NULL REFERENCES userfeatures(uuid) ON DELETE CASCADE,
  label text,
  configuration jsonb,
  PRIMARY KEY (name, user_uuid)
);

CREATE TABLE phone_number (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE,
  number text NOT NULL,
  caller_id_name text,
  main phone_number_main,
  shared boolean NOT NULL DEFAULT false,
  UNIQUE (number, tenant_uuid),
  UNIQUE (main, tenant_uuid)
);

-- A user's own blocked numbers: user state again.
CREATE TABLE blocklist (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_uuid varchar(36) NOT NULL REFERENCES tenant(uuid) ON DELETE CASCADE
);
CREATE TABLE blocklist_number (
  uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  blocklist_uuid uuid NOT NULL REFERENCES blocklist(uuid) ON DELETE CASCADE,
  number text NOT NULL,
  label text,
  UNIQUE (blocklist_uuid, number)
);
CREATE TABLE blocklist_user (
  user_uuid varchar(38) PRIMARY KEY REFERENCES userfeatures(uuid) ON DELETE CASCADE,
  blocklist_uuid uuid NOT NULL UNIQUE REFERENCES blocklist(uuid) ON DELETE CASCADE
);

-- No primary key, and duplicate rows (see the top).
CREATE TABLE plugin_note (
  topic text NOT NULL,
  body text,
  weight numeric(8, 3)
);

CREATE SEQUENCE provisioning_seq START 1000;

${CALL_RECORD_SCHEMA}
CREATE TABLE stat_agent (id serial PRIMARY KEY, name varchar(128) NOT NULL, number varchar(40) NOT NULL, tenant_uuid varchar(36) NOT NULL, agent_id integer);
CREATE TABLE stat_queue (id serial PRIMARY KEY, name varchar(128) NOT NULL, tenant_uuid varchar(36) NOT NULL, queue_id integer);
CREATE TABLE stat_call_on_queue (
  id serial PRIMARY KEY,
  callid varchar(32) NOT NULL,
  time timestamptz NOT NULL,
  ringtime integer NOT NULL DEFAULT 0,
  talktime integer NOT NULL DEFAULT 0,
  waittime integer NOT NULL DEFAULT 0,
  status varchar(20) NOT NULL,
  stat_queue_id integer REFERENCES stat_queue(id),
  stat_agent_id integer REFERENCES stat_agent(id)
);
-- Kept on each node, yet pointing at a replicated table: TRUNCATE of userfeatures is refused.
CREATE TABLE session (sessid char(32) PRIMARY KEY, start integer NOT NULL, expire integer NOT NULL, data text, user_id integer REFERENCES userfeatures(id));
CREATE TABLE dhcp (id serial PRIMARY KEY, pool_start varchar(64) NOT NULL DEFAULT '', pool_end varchar(64) NOT NULL DEFAULT '', network_interfaces varchar(255) NOT NULL DEFAULT '');
CREATE TABLE mail (id serial PRIMARY KEY, mydomain varchar(255) NOT NULL DEFAULT '0', origin varchar(255) NOT NULL DEFAULT 'xivo-clients.proformatique.com', relayhost varchar(255), fallback_relayhost varchar(255), canonical text NOT NULL DEFAULT '');
CREATE TABLE monitoring (id serial PRIMARY KEY, maintenance integer NOT NULL DEFAULT 0, alert_emails varchar(4096), dahdi_monitor_ports varchar(255), max_call_duration integer);
CREATE TABLE netiface (id serial PRIMARY KEY, ifname varchar(64) NOT NULL DEFAULT '' UNIQUE, hwtypeid integer NOT NULL DEFAULT 65534, networktype varchar(10) NOT NULL, type varchar(10) NOT NULL, family varchar(10) NOT NULL, method varchar(10), address varchar(39), netmask varchar(39), broadcast varchar(15), gateway varchar(39), mtu integer, vlanrawdevice varchar(64), vlanid integer, options text NOT NULL DEFAULT '', disable integer NOT NULL DEFAULT 0, dcreate integer NOT NULL DEFAULT 0, description text);
CREATE TABLE resolvconf (id serial PRIMARY KEY, hostname varchar(63) DEFAULT 'xivo', domain varchar(255) NOT NULL DEFAULT '', nameserver1 varchar(255), nameserver2 varchar(255), nameserver3 varchar(255), search varchar(255), description text);
`;

export async function createWazoFullSchema(client: pg.ClientBase): Promise<void> {
  await client.query(SCHEMA);
}

export interface FullSeedOptions {
  /**
   * About how many rows in all (replicated and excluded): most go to the tables that grow with
   * the users (endpoint_sip options and sections, lines, extensions, func keys, dial actions…),
   * about 44 rows per user. Default 20 000; a large node is about 1 000 000.
   */
  rows?: number;
  /** Size of each of the four attachment.file values. Default 64 KiB. */
  blobBytes?: number;
}

/** Rows per user, roughly, over all tables (measured on the fixture): turns `rows` into users. */
const ROWS_PER_USER = 44;

/**
 * Fills the schema deterministically (the same options give the same rows), inside PostgreSQL
 * with generate_series, in one transaction; the serial sequences end where the rows do.
 */
export async function seedWazoFull(client: pg.ClientBase, opts: FullSeedOptions = {}): Promise<void> {
  const users = Math.max(20, Math.round((opts.rows ?? 20_000) / ROWS_PER_USER));
  const blob = opts.blobBytes ?? 64 * 1024;
  const T = 4; // tenants
  const G = Math.max(2, Math.floor(users / 50)); // groups
  const Q = Math.max(2, Math.floor(users / 100)); // queues
  const A = Math.max(2, Math.floor(users / 20)); // agents
  const I = Math.floor(users / 3); // incalls
  const CF = Math.max(1, Math.floor(users / 100)); // call filters
  const PK = Math.max(1, Math.floor(users / 50)); // pickups
  const ten = (i: string) => `md5('tenant' || (1 + (${i}) % ${T}))::uuid::text`;
  const sip = (kind: string, i: string) => `md5('${kind}' || (${i}))::uuid`;
  const sec = (kind: string, i: string, type: string) => `md5('${kind}' || (${i}) || ':' || ${type})::uuid`;
  // Names from many scripts: text comparison and copying must not care.
  const first = `(ARRAY['Élodie','Zoë','Søren','李雷','Ангелина','محمد','Chloé','José','Łukasz','🦊 Renard','Ana','Ōtani'])[1 + i % 12]`;
  const last = `(ARRAY['Dupont','Müller','Ñúñez','王','Øster','O''Brien','Smith','Çelik','Nguyễn','Kowalski'])[1 + (i / 12) % 10]`;
  const q = (sql: string) => client.query(sql);

  await q("BEGIN");
  // The cycle, in Wazo's order of creation: the tenant first, pointing at a template that comes
  // later in the same transaction (the deferred constraint is checked at COMMIT).
  await q(`INSERT INTO tenant (uuid, sip_templates_generated, global_sip_template_uuid, webrtc_sip_template_uuid, webrtc_video_sip_template_uuid, registration_trunk_sip_template_uuid, twilio_trunk_sip_template_uuid)
           SELECT md5('tenant' || t)::uuid::text, true, ${sip("global", "t")}, ${sip("webrtc", "t")}, ${sip("webrtc_video", "t")}, ${sip("registration_trunk", "t")},
                  CASE WHEN t = 1 THEN ${sip("twilio_trunk", "t")} END
             FROM generate_series(1, ${T}) t`);
  await q(`INSERT INTO contexttype (name, commented, deletable, description)
           VALUES ('internal', 0, 0, ''), ('incall', 0, 0, ''), ('outcall', 0, 0, ''), ('services', 0, 0, ''), ('others', 0, 0, '')`);
  await q(`INSERT INTO context (uuid, name, displayname, contexttype, description, tenant_uuid)
           SELECT md5('ctx' || kind || t)::uuid, kind || '-' || t, initcap(kind) || ' — tenant ' || t, kind, 'Contexte « ' || kind || ' » n°' || t, md5('tenant' || t)::uuid::text
             FROM generate_series(1, ${T}) t, unnest(ARRAY['internal', 'incall', 'outcall', 'services']) kind`);
  await q(`INSERT INTO contextinclude (context, include, priority)
           SELECT 'internal-' || t, 'services-' || t, 0 FROM generate_series(1, ${T}) t
           UNION ALL SELECT 'outcall-' || t, 'internal-' || t, 1 FROM generate_series(1, ${T}) t`);
  await q(`INSERT INTO contextnumbers (context, type, numberbeg, numberend, didlength)
           SELECT 'internal-' || t, 'user'::contextnumbers_type, '100001', '${100000 + users}', 0 FROM generate_series(1, ${T}) t
           UNION ALL SELECT 'incall-' || t, 'incall', '0180000000', '0189999999', 4 FROM generate_series(1, ${T}) t
           UNION ALL SELECT 'internal-' || t, 'group', '2000', '2999', 0 FROM generate_series(1, ${T}) t`);

  await q(
    `INSERT INTO pjsip_transport (uuid, name) SELECT md5('transport' || n)::uuid, 'transport-' || n FROM unnest(ARRAY['udp', 'tcp', 'wss']) n`,
  );
  await q(`INSERT INTO pjsip_transport_option (key, value, pjsip_transport_uuid)
           SELECT o.k, o.v, md5('transport' || n)::uuid FROM unnest(ARRAY['udp', 'tcp', 'wss']) n,
                  LATERAL (VALUES ('protocol', n), ('bind', '0.0.0.0:' || CASE n WHEN 'wss' THEN '5039' ELSE '5060' END), ('local_net', '10.0.0.0/8'), ('external_media_address', '')) o(k, v)`);

  // SIP templates per tenant, then one endpoint per SIP line and per trunk.
  await q(`INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, transport_uuid, template)
           SELECT md5(kind || t)::uuid, kind || ' template', kind || '-' || substr(md5('tenant' || t), 1, 8), md5('tenant' || t)::uuid::text, NULL, true
             FROM generate_series(1, ${T}) t, unnest(ARRAY['global', 'webrtc', 'webrtc_video', 'registration_trunk', 'twilio_trunk']) kind`);
  await q(`INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, transport_uuid, template)
           SELECT ${sip("line", "i")}, NULL, lower(substr(md5('name' || i), 1, 12)), ${ten("i")}, md5('transport' || CASE WHEN i % 5 = 0 THEN 'wss' ELSE 'udp' END)::uuid, false
             FROM generate_series(1, ${users}) i WHERE i % 20 <> 0 AND i % 50 <> 25`);
  const trunks = 3 * T + Math.floor(users / 500);
  await q(`INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, transport_uuid, template)
           SELECT ${sip("trunk", "i")}, 'Opérateur ' || i, 'trunk-' || i, ${ten("i")}, md5('transport' || 'udp')::uuid, false
             FROM generate_series(1, ${trunks}) i`);
  await q(`INSERT INTO endpoint_sip_template (child_uuid, parent_uuid, priority)
           SELECT ${sip("line", "i")}, md5('global' || (1 + i % ${T}))::uuid, 0 FROM generate_series(1, ${users}) i WHERE i % 20 <> 0 AND i % 50 <> 25
           UNION ALL
           SELECT ${sip("line", "i")}, md5('webrtc' || (1 + i % ${T}))::uuid, 1 FROM generate_series(1, ${users}) i WHERE i % 5 = 0 AND i % 20 <> 0 AND i % 50 <> 25
           UNION ALL
           SELECT ${sip("trunk", "i")}, md5('registration_trunk' || (1 + i % ${T}))::uuid, 0 FROM generate_series(1, ${trunks}) i`);
  // Sections: aor, auth, endpoint for lines; endpoint, registration, outbound_auth, identify for trunks; endpoint for templates.
  await q(`INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid)
           SELECT ${sec("line", "i", "s")}, s::endpoint_sip_section_type, ${sip("line", "i")}
             FROM generate_series(1, ${users}) i, unnest(ARRAY['aor', 'auth', 'endpoint']) s WHERE i % 20 <> 0 AND i % 50 <> 25
           UNION ALL
           SELECT ${sec("trunk", "i", "s")}, s::endpoint_sip_section_type, ${sip("trunk", "i")}
             FROM generate_series(1, ${trunks}) i, unnest(ARRAY['endpoint', 'registration', 'outbound_auth', 'identify', 'aor']) s
           UNION ALL
           SELECT md5('tpl' || kind || t)::uuid, 'endpoint', md5(kind || t)::uuid
             FROM generate_series(1, ${T}) t, unnest(ARRAY['global', 'webrtc', 'webrtc_video', 'registration_trunk', 'twilio_trunk']) kind`);
  await q(`INSERT INTO endpoint_sip_section_option (uuid, key, value, endpoint_sip_section_uuid)
           SELECT md5('opt' || i || ':' || o.n)::uuid, o.k, o.v, ${sec("line", "i", "o.s")}
             FROM generate_series(1, ${users}) i,
                  LATERAL (VALUES
                    (1, 'aor', 'max_contacts', (1 + i % 3)::text),
                    (2, 'aor', 'remove_existing', CASE WHEN i % 3 = 0 THEN 'no' ELSE 'yes' END),
                    (3, 'aor', 'qualify_frequency', '60'),
                    (4, 'auth', 'username', lower(substr(md5('name' || i), 1, 12))),
                    (5, 'auth', 'password', substr(md5('secret' || i), 1, 16)),
                    (6, 'auth', 'type', 'userpass'),
                    (7, 'endpoint', 'callerid', '"' || ${first} || ' ' || ${last} || '" <' || (1000 + i) || '>'),
                    (8, 'endpoint', 'context', 'internal-' || (1 + i % ${T})),
                    (9, 'endpoint', 'set_var', 'XIVO_USERUUID=' || md5('user' || i)::uuid),
                    (10, 'endpoint', 'set_var', 'WAZO_CHANNEL_DIRECTION=from-wazo'),
                    (11, 'endpoint', 'allow', CASE WHEN i % 5 = 0 THEN 'opus,vp8' ELSE 'alaw,ulaw,g722' END),
                    (12, 'endpoint', 'disallow', 'all')
                  ) o(n, s, k, v)
            WHERE i % 20 <> 0 AND i % 50 <> 25
           UNION ALL
           SELECT md5('topt' || i || ':' || o.n)::uuid, o.k, o.v, ${sec("trunk", "i", "o.s")}
             FROM generate_series(1, ${trunks}) i,
                  LATERAL (VALUES
                    (1, 'endpoint', 'context', 'incall-' || (1 + i % ${T})),
                    (2, 'endpoint', 'outbound_auth', 'auth_trunk_' || i),
                    (3, 'registration', 'server_uri', 'sip:sip' || i || '.provider.example'),
                    (4, 'registration', 'client_uri', 'sip:user' || i || '@sip' || i || '.provider.example'),
                    (5, 'registration', 'retry_interval', '30'),
                    (6, 'outbound_auth', 'username', 'user' || i),
                    (7, 'outbound_auth', 'password', substr(md5('trunk-secret' || i), 1, 20)),
                    (8, 'identify', 'match', '198.51.100.' || (i % 250)),
                    (9, 'aor', 'contact', 'sip:sip' || i || '.provider.example')
                  ) o(n, s, k, v)
           UNION ALL
           SELECT md5('tplopt' || kind || t || o.k)::uuid, o.k, o.v, md5('tpl' || kind || t)::uuid
             FROM generate_series(1, ${T}) t, unnest(ARRAY['global', 'webrtc', 'webrtc_video', 'registration_trunk', 'twilio_trunk']) kind,
                  LATERAL (VALUES ('rtp_timeout', '7200'), ('direct_media', 'no'), ('dtmf_mode', 'rfc4733'), ('language', 'fr_FR'),
                                  ('webrtc', CASE WHEN kind LIKE 'webrtc%' THEN 'yes' ELSE 'no' END)) o(k, v)`);
  await q(`INSERT INTO endpoint_sccp (id, tenant_uuid, options)
           SELECT i / 20, ${ten("i")}, ARRAY[ARRAY['cid_name', 'Poste ' || i], ARRAY['cid_num', (1000 + i)::text]]
             FROM generate_series(1, ${users}) i WHERE i % 20 = 0`);
  await q(`INSERT INTO usercustom (id, tenant_uuid, name, context, interface, intfsuffix, category)
           SELECT (i + 25) / 50, ${ten("i")}, 'custom' || i, 'internal-' || (1 + i % ${T}), 'DAHDI/i1/' || (1000 + i), '', 'user'::usercustom_category
             FROM generate_series(1, ${users}) i WHERE i % 50 = 25
           UNION ALL
           SELECT ${users} + t, md5('tenant' || t)::uuid::text, 'isdn' || t, 'incall-' || t, 'DAHDI/g' || t, '/n', 'trunk' FROM generate_series(1, ${T}) t`);

  // Function-key templates: a few shared, one private per user (Wazo creates it with the user).
  await q(`INSERT INTO func_key_type (id, name) VALUES (1, 'speeddial')`);
  await q(`INSERT INTO func_key_destination_type (id, name)
           VALUES (1, 'user'), (2, 'group'), (3, 'queue'), (4, 'conference'), (5, 'service'), (6, 'forward'), (7, 'park_position'),
                  (8, 'features'), (9, 'paging'), (10, 'custom'), (11, 'agent'), (12, 'bsfilter'), (13, 'groupmember'), (14, 'parking')`);
  await q(`INSERT INTO func_key_template (id, tenant_uuid, name, private)
           SELECT i, ${ten("i")}, 'Modèle ' || i, false FROM generate_series(1, 10) i
           UNION ALL SELECT 10 + i, ${ten("i")}, NULL, true FROM generate_series(1, ${users}) i`);

  await q(`INSERT INTO voicemail (uniqueid, context, mailbox, password, fullname, email, language, tz, attach, maxmsg, options)
           SELECT i / 2, 'internal-' || (1 + i % ${T}), (1000 + i)::text, (i * 7919 % 10000)::text, left(${first} || ' ' || ${last}, 80),
                  CASE WHEN i % 4 = 0 THEN NULL ELSE 'vm' || i || '@example.com' END, 'fr_FR', 'eu-fr', i % 3, 100,
                  CASE WHEN i % 6 = 0 THEN ARRAY[ARRAY['saycid', 'yes'], ARRAY['envelope', 'no']] ELSE '{}' END
             FROM generate_series(2, ${users}, 2) i`);
  await q(`INSERT INTO userfeatures (id, uuid, firstname, lastname, email, voicemailid, agentid, tenant_uuid, callerid, ringseconds, simultcalls,
                                     enableclient, loginclient, passwdclient, enablevoicemail, enablexfer, incallfilter, enablednd, enableunc, destunc,
                                     enablerna, destrna, enablebusy, destbusy, musiconhold, outcallerid, mobilephonenumber, bsfilter, timezone, language,
                                     func_key_template_id, func_key_private_template_id, created_at, userfield, description,
                                     call_record_incoming_external_enabled)
           SELECT i, md5('user' || i)::uuid::text, ${first}, ${last}, 'user' || i || '@example.com', CASE WHEN i % 2 = 0 THEN i / 2 END,
                  CASE WHEN i % 20 = 1 THEN 1 + i / 20 END, ${ten("i")}, '"' || ${first} || ' ' || ${last} || '"', 10 + i % 50, 5,
                  i % 4, CASE WHEN i % 4 = 0 THEN '' ELSE 'u' || i END, CASE WHEN i % 4 = 0 THEN '' ELSE substr(md5('pw' || i), 1, 12) END,
                  (i % 2 = 0)::int, 1, (i % 97 = 0)::int, (i % 11 = 0)::int, (i % 13 = 0)::int, CASE WHEN i % 13 = 0 THEN '06' || lpad(i::text, 8, '0') ELSE '' END,
                  (i % 17 = 0)::int, CASE WHEN i % 17 = 0 THEN (1000 + (i + 1) % ${users})::text ELSE '' END,
                  (i % 19 = 0)::int, CASE WHEN i % 19 = 0 THEN '1' || lpad((i % 1000)::text, 3, '0') ELSE '' END,
                  'default', '', '+3361' || lpad(i::text, 7, '0'), (CASE i % 100 WHEN 1 THEN 'boss' WHEN 2 THEN 'secretary' ELSE 'no' END)::generic_bsfilter,
                  CASE WHEN i % 7 = 0 THEN 'America/Montreal' END, CASE WHEN i % 2 = 0 THEN 'fr_FR' ELSE 'en_US' END,
                  CASE WHEN i % 3 = 0 THEN 1 + i % 10 END, 10 + i, timestamp '2023-01-01' + i * interval '41 seconds', '',
                  CASE WHEN i % 9 = 0 THEN 'Bureau ' || i || E' —\\tétage ' || (i % 5) ELSE '' END, i % 8 = 0
             FROM generate_series(1, ${users}) i`);

  await q(`INSERT INTO linefeatures (id, device, configregistrar, name, number, context, provisioningid, num, commented, description,
                                     endpoint_sip_uuid, endpoint_sccp_id, endpoint_custom_id, registrar, tenant_uuid)
           SELECT i, CASE WHEN i % 3 <> 0 THEN substr(md5('dev' || i), 1, 32) END, 'default',
                  CASE WHEN i % 20 = 0 THEN (1000 + i)::text WHEN i % 50 = 25 THEN 'DAHDI/i1/' || (1000 + i) ELSE lower(substr(md5('name' || i), 1, 12)) END,
                  (100000 + i)::text, 'internal-' || (1 + i % ${T}), 100000 + (i * 7919) % 900000, 1, 0, '',
                  CASE WHEN i % 20 <> 0 AND i % 50 <> 25 THEN ${sip("line", "i")} END, CASE WHEN i % 20 = 0 THEN i / 20 END,
                  CASE WHEN i % 50 = 25 THEN (i + 25) / 50 END, 'default', ${ten("i")}
             FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO user_line (user_id, line_id, main_user, main_line)
           SELECT i, i, true, true FROM generate_series(1, ${users}) i
           UNION ALL SELECT i + 1, i, false, false FROM generate_series(1, ${users} - 1, 40) i`);

  // Extensions: one per user, the incalls' DIDs, groups, queues, the feature codes.
  await q(`INSERT INTO incall (id, tenant_uuid, preprocess_subroutine, greeting_sound, description)
           SELECT i, ${ten("i")}, NULL, CASE WHEN i % 4 = 0 THEN 'greeting-' || i END, 'SDA ' || i FROM generate_series(1, ${I}) i`);
  await q(`INSERT INTO groupfeatures (id, uuid, tenant_uuid, name, label, timeout, ignore_forward)
           SELECT i, md5('group' || i)::uuid, ${ten("i")}, 'grp-' || i, 'Groupe n°' || i, 20 + i % 40, i % 2 FROM generate_series(1, ${G}) i`);
  await q(`INSERT INTO queuefeatures (id, tenant_uuid, name, displayname, number, context, timeout, waittime, waitratio, music_on_hold)
           SELECT i, ${ten("i")}, 'q-' || i, 'File d''attente ' || i, (3000 + i)::text, 'internal-' || (1 + i % ${T}), 30, 60 + i, i / 7.0::float8, 'default'
             FROM generate_series(1, ${Q}) i`);
  await q(`INSERT INTO queue (name, musicclass, context, timeout, "monitor-type", "announce-frequency", retry, wrapuptime, strategy, joinempty, leavewhenempty,
                              category, "announce-position", defaultrule, weight)
           SELECT 'grp-' || i, 'default', NULL, 15, NULL, 0, 5, 0, 'ringall', 'unavailable,invalid,unknown', 'unavailable,invalid,unknown', 'group'::queue_category, 'no', NULL, 0
             FROM generate_series(1, ${G}) i
           UNION ALL
           SELECT 'q-' || i, 'default', 'internal-' || (1 + i % ${T}), 15, (CASE WHEN i % 2 = 0 THEN 'mixmonitor' ELSE 'no' END)::queue_monitor_type,
                  30, 5, i % 30, (ARRAY['ringall', 'leastrecent', 'fewestcalls', 'random', 'rrmemory', 'linear', 'wrandom'])[1 + i % 7],
                  'unavailable', 'unavailable', 'queue', 'yes', CASE WHEN i % 3 = 0 THEN 'rule-' || i END, i % 10
             FROM generate_series(1, ${Q}) i`);
  await q(`INSERT INTO extensions (id, context, exten, type, typeval)
           SELECT i, 'internal-' || (1 + i % ${T}), (100000 + i)::text, 'user'::extenumbers_type, i::text FROM generate_series(1, ${users}) i
           UNION ALL SELECT ${users} + i, 'incall-' || (1 + i % ${T}), '018' || lpad(i::text, 7, '0'), 'incall', i::text FROM generate_series(1, ${I}) i
           UNION ALL SELECT ${users + I} + i, 'internal-' || (1 + i % ${T}), (2000 + i)::text, 'group', i::text FROM generate_series(1, ${G}) i
           UNION ALL SELECT ${users + I + G} + i, 'internal-' || (1 + i % ${T}), (3000 + i)::text, 'queue', i::text FROM generate_series(1, ${Q}) i`);
  await q(
    `INSERT INTO line_extension (line_id, extension_id, main_extension) SELECT i, i, true FROM generate_series(1, ${users}) i`,
  );
  await q(`INSERT INTO feature_extension (uuid, enabled, exten, feature)
           SELECT md5('fe' || f)::uuid, f <> 'paging', x, f
             FROM (VALUES ('enablednd', '*25'), ('enablevm', '*90'), ('incallfilter', '*27'), ('fwdunc', '_*21.'), ('fwdbusy', '_*23.'), ('fwdrna', '_*22.'),
                          ('fwdundoall', '*20'), ('callrecord', '*26'), ('phonestatus', '*10'), ('pickup', '_*8.'), ('paging', '_*11.'), ('vmusermsg', '*98'),
                          ('agentstaticlogin', '_*31.'), ('agentstaticlogoff', '_*32.'), ('bsfilter', '_*37.'), ('calllistening', '*34'), ('directoryaccess', '*40'),
                          ('enablexfer', '*29'), ('guestprov', '*48378'), ('meetme', '_*38.')) f(f, x)`);
  await q(`INSERT INTO features (filename, category, var_name, var_val)
           SELECT 'features.conf', c, v, x
             FROM (VALUES ('general', 'parkext', '700'), ('general', 'parkpos', '701-750'), ('general', 'context', 'parkedcalls'), ('general', 'parkingtime', '45'),
                          ('general', 'transferdigittimeout', '3'), ('general', 'xfersound', 'beep'), ('general', 'xferfailsound', 'beeperr'),
                          ('general', 'pickupexten', '*8'), ('general', 'featuredigittimeout', '1500'), ('general', 'atxfernoanswertimeout', '15'),
                          ('featuremap', 'blindxfer', '*1'), ('featuremap', 'disconnect', '*0'), ('featuremap', 'automon', '*3'), ('featuremap', 'atxfer', '*2'),
                          ('featuremap', 'parkcall', '#72'), ('featuremap', 'automixmon', '')) f(c, v, x)`);
  await q(
    `INSERT INTO asterisk_file (id, name) SELECT i, f FROM unnest(ARRAY['confbridge.conf', 'hep.conf', 'pjsip.conf', 'rtp.conf', 'iax.conf']) WITH ORDINALITY u(f, i)`,
  );
  await q(`INSERT INTO asterisk_file_section (id, name, priority, asterisk_file_id)
           SELECT (f - 1) * 4 + s, (ARRAY['general', 'global', 'system', 'default_bridge'])[s], s, f FROM generate_series(1, 5) f, generate_series(1, 4) s`);
  await q(`INSERT INTO asterisk_file_variable (key, value, priority, asterisk_file_section_id)
           SELECT 'var_' || v, CASE WHEN v % 7 = 0 THEN NULL ELSE 'valeur ' || v END, v, s FROM generate_series(1, 20) s, generate_series(1, 12) v`);

  await q(`INSERT INTO agentfeatures (id, tenant_uuid, numgroup, firstname, lastname, number, passwd, context, language, autologoff, description)
           OVERRIDING SYSTEM VALUE
           SELECT i, ${ten("i")}, 1, ${first}, ${last}, (8000 + i)::text, (i % 9999)::text, 'internal-' || (1 + i % ${T}), 'fr_FR', 0, ''
             FROM generate_series(1, ${A}) i`);
  await q(`INSERT INTO agentglobalparams (category, option_name, option_value)
           VALUES ('general', 'persistentagents', '1'), ('general', 'multiplelogin', '1'), ('agents', 'recordagentcalls', '0'), ('agents', 'recordformat', 'wav'),
                  ('agents', 'urlprefix', ''), ('agents', 'savecallsin', '/var/spool/asterisk/monitor'), ('agents', 'custom_beep', 'beep')`);
  await q(`INSERT INTO queueskill (id, tenant_uuid, name, description)
           SELECT i, ${ten("i")}, 'compétence-' || i, 'Compétence ' || i FROM generate_series(1, 10 * ${T}) i`);
  await q(`INSERT INTO agentqueueskill (agentid, skillid, weight)
           SELECT a, 1 + (a + k) % (10 * ${T}), (a * k) % 100 FROM generate_series(1, ${A}) a, generate_series(1, 3) k`);
  await q(`INSERT INTO queueskillrule (tenant_uuid, name, rule)
           SELECT ${ten("i")}, 'rule-' || i, 'WT < 60 ? compétence-1 > 50 : compétence-2 > 10' FROM generate_series(1, 8) i`);
  await q(`INSERT INTO queuemember (queue_name, interface, penalty, usertype, userid, channel, category, position)
           SELECT 'grp-' || (1 + i % ${G}), 'PJSIP/' || lower(substr(md5('name' || i), 1, 12)), 0, 'user'::queuemember_usertype, i, 'SIP', 'group'::queue_category, i / ${G}
             FROM generate_series(1, ${users}) i WHERE i % 2 = 0
           UNION ALL
           SELECT 'q-' || (1 + i % ${Q}), 'PJSIP/' || lower(substr(md5('name' || i), 1, 12)), i % 5, 'user', i, 'SIP', 'queue', 0
             FROM generate_series(1, ${users}) i WHERE i % 4 = 0
           UNION ALL
           SELECT 'q-' || (1 + a % ${Q}), 'Local/id-' || a || '@agentcallback', a % 3, 'agent', a, 'Agent', 'queue', 0 FROM generate_series(1, ${A}) a`);

  await q(`INSERT INTO callerid (mode, callerdisplay, type, typeval)
           SELECT (ARRAY['prepend', 'overwrite', 'append'])[1 + i % 3]::callerid_mode, 'SDA ' || i, 'incall'::callerid_type, i FROM generate_series(1, ${I}, 5) i
           UNION ALL SELECT 'prepend', 'G' || i || ': ', 'group', i FROM generate_series(1, ${G}) i`);
  // Dial actions: each incall's destination, each group's and queue's no-answer, every other user's fallbacks.
  await q(`INSERT INTO dialaction (event, category, categoryval, action, actionarg1, actionarg2, linked)
           SELECT 'answer'::dialaction_event, 'incall'::dialaction_category, i::text, 'user'::dialaction_action, (1 + (i * 3) % ${users})::text, NULL, 1 FROM generate_series(1, ${I}) i
           UNION ALL
           SELECT e::dialaction_event, 'user', i::text, (CASE WHEN e = 'busy' THEN 'voicemail' ELSE 'none' END)::dialaction_action,
                  CASE WHEN e = 'busy' THEN (i / 2)::text END, NULL, 1
             FROM generate_series(2, ${users}, 2) i, unnest(ARRAY['noanswer', 'busy', 'congestion', 'chanunavail']) e
           UNION ALL
           SELECT 'noanswer', 'group', i::text, 'queue', (1 + i % ${Q})::text, '', 1 FROM generate_series(1, ${G}) i
           UNION ALL
           SELECT e::dialaction_event, 'queue', i::text, 'endcall:hangup', NULL, NULL, 1
             FROM generate_series(1, ${Q}) i, unnest(ARRAY['noanswer', 'busy', 'congestion', 'chanunavail', 'qwaittime', 'qwaitratio']) e`);
  await q(`INSERT INTO outcall (id, tenant_uuid, name, label, internal, hangupringtime, description)
           SELECT i, ${ten("i")}, 'outcall-' || i, 'Sortant n°' || i, 0, 0, NULL FROM generate_series(1, 2 * ${T}) i`);
  await q(`INSERT INTO trunkfeatures (id, tenant_uuid, endpoint_sip_uuid, endpoint_custom_id, description, context, label)
           SELECT i, ${ten("i")}, ${sip("trunk", "i")}, NULL, 'Opérateur ' || i, 'incall-' || (1 + i % ${T}), 'trunk ' || i FROM generate_series(1, ${trunks}) i
           UNION ALL SELECT ${trunks} + t, md5('tenant' || t)::uuid::text, NULL, ${users} + t, 'RNIS', 'incall-' || t, 'isdn ' || t FROM generate_series(1, ${T}) t`);
  await q(`INSERT INTO outcalltrunk (outcallid, trunkfeaturesid, priority)
           SELECT o, 1 + (o + k) % ${trunks}, k FROM generate_series(1, 2 * ${T}) o, generate_series(0, 1) k`);
  await q(`INSERT INTO dialpattern (type, typeid, externprefix, prefix, exten, stripnum, callerid)
           SELECT 'outcall', o, NULL, NULL, p, CASE WHEN p LIKE '0%' THEN 1 END, NULL
             FROM generate_series(1, 2 * ${T}) o, unnest(ARRAY['_0XXXXXXXXX', '_00.', '_1X', '_11[25]', '_3XXX']) p`);

  // Function keys: three per user (another user, a service, a forward or a custom number).
  await q(`INSERT INTO func_key (id, type_id, destination_type_id)
           SELECT 3 * (i - 1) + k, 1, CASE k WHEN 1 THEN 1 WHEN 2 THEN 5 ELSE CASE WHEN i % 2 = 0 THEN 6 ELSE 10 END END
             FROM generate_series(1, ${users}) i, generate_series(1, 3) k
           UNION ALL SELECT 3 * ${users} + g, 1, 2 FROM generate_series(1, ${G}) g
           UNION ALL SELECT 3 * ${users} + ${G} + qq, 1, 3 FROM generate_series(1, ${Q}) qq`);
  await q(`INSERT INTO func_key_mapping (template_id, func_key_id, destination_type_id, label, position, blf, inherited)
           SELECT 10 + i, 3 * (i - 1) + k, CASE k WHEN 1 THEN 1 WHEN 2 THEN 5 ELSE CASE WHEN i % 2 = 0 THEN 6 ELSE 10 END END,
                  CASE k WHEN 1 THEN 'Collègue' WHEN 2 THEN 'NPD' ELSE NULL END, k, k <> 3, true
             FROM generate_series(1, ${users}) i, generate_series(1, 3) k
           UNION ALL SELECT 1 + g % 10, 3 * ${users} + g, 2, 'Groupe ' || g, 10 + g, true, false FROM generate_series(1, ${G}) g
           UNION ALL SELECT 1 + qq % 10, 3 * ${users} + ${G} + qq, 3, NULL, 10 + ${G} + qq, false, false FROM generate_series(1, ${Q}) qq`);
  await q(`INSERT INTO func_key_dest_user (func_key_id, user_id, destination_type_id)
           SELECT 3 * (i - 1) + 1, 1 + i % ${users}, 1 FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO func_key_dest_service (func_key_id, destination_type_id, feature_extension_uuid)
           SELECT 3 * (i - 1) + 2, 5, md5('fe' || (ARRAY['enablednd', 'incallfilter', 'enablevm', 'callrecord'])[1 + i % 4])::uuid FROM generate_series(1, ${users}) i`);
  await q(`INSERT INTO func_key_dest_forward (func_key_id, destination_type_id, feature_extension_uuid, number)
           SELECT 3 * (i - 1) + 3, 6, md5('fe' || (ARRAY['fwdunc', 'fwdbusy', 'fwdrna'])[1 + i % 3])::uuid, CASE WHEN i % 4 = 0 THEN '06' || lpad(i::text, 8, '0') END
             FROM generate_series(2, ${users}, 2) i`);
  await q(`INSERT INTO func_key_dest_custom (func_key_id, destination_type_id, exten)
           SELECT 3 * (i - 1) + 3, 10, '*' || (i % 100) FROM generate_series(1, ${users}, 2) i`);
  await q(
    `INSERT INTO func_key_dest_group (func_key_id, group_id, destination_type_id) SELECT 3 * ${users} + g, g, 2 FROM generate_series(1, ${G}) g`,
  );
  await q(
    `INSERT INTO func_key_dest_queue (func_key_id, queue_id, destination_type_id) SELECT 3 * ${users} + ${G} + qq, qq, 3 FROM generate_series(1, ${Q}) qq`,
  );

  await q(`INSERT INTO callfilter (id, tenant_uuid, name, type, bosssecretary, callfrom, ringseconds, description)
           SELECT i, ${ten("i")}, 'Filtre ' || i, 'bosssecretary', (ARRAY['bossfirst-serial', 'secretary-simult', 'all'])[1 + i % 3]::callfilter_bosssecretary,
                  'all', 15, '' FROM generate_series(1, ${CF}) i`);
  await q(`INSERT INTO callfiltermember (callfilterid, type, typeval, ringseconds, priority, bstype, active)
           SELECT 1 + (i - 1) % ${CF}, 'user', i::text, 10, p, (CASE WHEN p = 0 THEN 'boss' ELSE 'secretary' END)::generic_bsfilter, (i % 3 = 0)::int
             FROM generate_series(1, 3 * ${CF}) i, LATERAL (SELECT (i - 1) / ${CF} AS p) pp`);
  await q(
    `INSERT INTO pickup (id, tenant_uuid, name, description) SELECT i, ${ten("i")}, 'interception-' || i, '' FROM generate_series(1, ${PK}) i`,
  );
  await q(`INSERT INTO pickupmember (pickupid, category, membertype, memberid)
           SELECT 1 + i % ${PK}, (CASE WHEN i % 10 = 0 THEN 'pickup' ELSE 'member' END)::pickup_category, 'user'::pickup_membertype, i FROM generate_series(5, ${users}, 5) i
           UNION ALL SELECT 1 + g % ${PK}, 'pickup', 'group', g FROM generate_series(1, ${G}) g`);
  await q(`INSERT INTO rightcall (id, tenant_uuid, name, passwd, "authorization", description)
           SELECT i, ${ten("i")}, 'droit-' || i, CASE WHEN i % 2 = 0 THEN (1000 + i)::text ELSE '' END, i % 2, 'Droit d''appel ' || i FROM generate_series(1, 5 * ${T}) i`);
  await q(
    `INSERT INTO rightcallexten (rightcallid, exten) SELECT r, (ARRAY['_00.', '_08XX.', '_3617', '_1XX'])[k] FROM generate_series(1, 5 * ${T}) r, generate_series(1, 4) k`,
  );
  await q(`INSERT INTO rightcallmember (rightcallid, type, typeval)
           SELECT 1 + i % (5 * ${T}), 'user'::rightcallmember_type, i::text FROM generate_series(10, ${users}, 10) i
           UNION ALL SELECT 1 + o % (5 * ${T}), 'outcall', o::text FROM generate_series(1, 2 * ${T}) o`);
  await q(`INSERT INTO schedule (id, tenant_uuid, name, timezone, fallback_action, fallback_actionid, description)
           SELECT i, ${ten("i")}, 'Horaires ' || i, 'Europe/Paris', 'voicemail', (1 + i)::text, NULL FROM generate_series(1, 2 * ${T}) i`);
  await q(`INSERT INTO schedule_time (schedule_id, mode, hours, weekdays, monthdays, months, action, actionid)
           SELECT s, (CASE WHEN k <= 3 THEN 'opened' ELSE 'closed' END)::schedule_time_mode, '08:00-12:00', '1-5', '1-31', '1-12',
                  CASE WHEN k > 3 THEN 'endcall:hangup'::dialaction_action END, NULL
             FROM generate_series(1, 2 * ${T}) s, generate_series(1, 5) k`);
  await q(`INSERT INTO schedulepath (schedule_id, path, pathid, "order")
           SELECT 1 + i % (2 * ${T}), 'user'::schedulepath_type, i, 0 FROM generate_series(20, ${users}, 20) i
           UNION ALL SELECT 1 + i % (2 * ${T}), 'incall', i, 0 FROM generate_series(1, ${I}, 10) i`);
  await q(`INSERT INTO moh (uuid, tenant_uuid, name, label, mode, application, sort)
           SELECT md5('moh' || i)::uuid, ${ten("i")}, CASE WHEN i = 1 THEN 'default' ELSE 'moh-' || i END, 'Musique ' || i,
                  (ARRAY['files', 'custom', 'mp3'])[1 + i % 3]::moh_mode, CASE WHEN i % 3 = 1 THEN '/usr/bin/mpg123 -q -r 8000 --mono -s http://radio.example/' END,
                  CASE WHEN i % 2 = 0 THEN 'random' ELSE 'alpha' END
             FROM generate_series(1, 3 * ${T}) i`);
  await q(`INSERT INTO paging (id, tenant_uuid, number, name, duplex, timeout, description)
           SELECT i, ${ten("i")}, (700 + i)::text, 'Appel général ' || i, i % 2, 30, NULL FROM generate_series(1, 2 * ${T}) i`);
  await q(`INSERT INTO paginguser (pagingid, userfeaturesid, caller)
           SELECT 1 + i % (2 * ${T}), i, c FROM generate_series(50, ${users}, 50) i, generate_series(0, 1) c`);
  await q(`INSERT INTO conference (id, tenant_uuid, name, max_users, record, pin, admin_pin, music_on_hold)
           SELECT i, ${ten("i")}, 'Conférence ' || i, 50, i % 2 = 0, CASE WHEN i % 2 = 0 THEN (1000 + i)::text END, NULL, 'default' FROM generate_series(1, 3 * ${T}) i`);
  await q(`INSERT INTO parking_lot (id, tenant_uuid, name, slots_start, slots_end, timeout, music_on_hold)
           SELECT t, md5('tenant' || t)::uuid::text, 'Parking ' || t, '701', '750', 45, 'default' FROM generate_series(1, ${T}) t`);
  await q(`INSERT INTO ivr (id, tenant_uuid, name, greeting_sound, menu_sound, invalid_sound, timeout, max_tries, description)
           SELECT i, ${ten("i")}, 'SVI ' || i, 'bienvenue', 'menu-' || i, 'invalide', 5, 3, NULL FROM generate_series(1, 2 * ${T}) i`);
  await q(
    `INSERT INTO ivr_choice (ivr_id, exten) SELECT v, k::text FROM generate_series(1, 2 * ${T}) v, generate_series(1, 5) k`,
  );
  await q(`INSERT INTO switchboard (uuid, tenant_uuid, name, hold_moh_uuid, queue_moh_uuid, timeout)
           SELECT md5('sb' || t)::uuid::text, md5('tenant' || t)::uuid::text, 'Standard ' || t, md5('moh' || t)::uuid, NULL, 30 FROM generate_series(1, ${T}) t`);
  await q(`INSERT INTO switchboard_member_user (switchboard_uuid, user_uuid)
           SELECT md5('sb' || (1 + i % ${T}))::uuid::text, md5('user' || i)::uuid::text FROM generate_series(100, ${users}, 100) i`);
  await q(
    `INSERT INTO application (uuid, tenant_uuid, name) SELECT md5('app' || i)::uuid::text, ${ten("i")}, 'Application ' || i FROM generate_series(1, 2 * ${T}) i`,
  );
  await q(`INSERT INTO application_dest_node (application_uuid, type_, music_on_hold, answer)
           SELECT md5('app' || i)::uuid::text, 'holding', 'default', i % 2 = 0 FROM generate_series(1, 2 * ${T}) i`);
  await q(`INSERT INTO sccpline (id, tenant_uuid, name, context, cid_name, cid_num, disallow, allow)
           SELECT i / 20, ${ten("i")}, (1000 + i)::text, 'internal-' || (1 + i % ${T}), left(${first} || ' ' || ${last}, 80), (1000 + i)::text, 'all', 'alaw,ulaw'
             FROM generate_series(20, ${users}, 20) i`);
  await q(`INSERT INTO sccpdevice (name, device, line, voicemail)
           SELECT 'SEP' || upper(substr(md5('sccp' || i), 1, 12)), 'SEP' || upper(substr(md5('sccp' || i), 1, 12)), (1000 + i)::text, '' FROM generate_series(20, ${users}, 40) i`);
  await q(`INSERT INTO sccpgeneralsettings (option_name, option_value)
           VALUES ('directmedia', 'no'), ('dialtimeout', '5'), ('language', 'en_US'), ('vmexten', '*98'), ('keepalive', '10'), ('guest', 'no'), ('max_guests', '100')`);
  await q(`INSERT INTO accesswebservice (uuid, name, login, passwd, acl, description)
           SELECT md5('ws' || n)::uuid::text, n, n, substr(md5('wspw' || n), 1, 20), ARRAY['confd.users.read', 'confd.#', n || '.#'], ''
             FROM unnest(ARRAY['wazo-auth', 'wazo-dird-wazo-backend', 'wazo-call-logd', 'wazo-plugind', 'wazo-upgrade', 'wazo-agentd-cli', 'wazo-agid', 'wazo-confd', 'wazo-calld', 'wazo-wizard']) n`);
  // A few large binary values, incompressible enough that TOAST keeps them big.
  await q(`INSERT INTO attachment (id, name, object_type, object_id, file, size, mime)
           SELECT i, 'fiche-' || i || '.pdf', 'cti_sheet', i,
                  (SELECT string_agg(decode(md5(i::text || ':' || j), 'hex'), ''::bytea) FROM generate_series(1, ${Math.ceil(blob / 16)}) j),
                  ${Math.ceil(blob / 16) * 16}, 'application/pdf'
             FROM generate_series(1, 4) i`);
  await q(
    `INSERT INTO general (timezone, exchange_trunkfeatures_id, max_calls, live_reload_enabled) VALUES ('Europe/Paris', NULL, NULL, true)`,
  );
  await q(`INSERT INTO infos (uuid, wazo_version, live_reload_enabled, timezone, configured)
           VALUES ('5b2f0ee2-3f2c-4fb0-9a0f-0c6c3e0d5a01', '25.01', true, 'Europe/Paris', true)`);
  await q(`INSERT INTO provisioning (net4_ip, net4_ip_rest, username, password, dhcp_integration, rest_port, private, secure, http_port)
           VALUES ('10.0.0.1', '127.0.0.1', 'admin', 'provd-secret', 1, 8666, 0, 1, 8667)`);
  await q(`INSERT INTO ingress_http (uuid, tenant_uuid, uri)
           SELECT md5('ingress' || t)::uuid, md5('tenant' || t)::uuid::text, 'https://pbx' || t || '.example.com' FROM generate_series(1, ${T}) t`);
  await q(`INSERT INTO external_app (name, tenant_uuid, label, configuration)
           SELECT 'app-' || k, md5('tenant' || t)::uuid::text, 'Appli ' || k, jsonb_build_object('url', 'https://app' || k || '.example', 'n', k, 'on', k % 2 = 0)
             FROM generate_series(1, ${T}) t, generate_series(1, 3) k`);
  await q(`INSERT INTO user_external_app (name, user_uuid, label, configuration)
           SELECT 'app-' || (1 + i % 3), md5('user' || i)::uuid::text, NULL, jsonb_build_object('zoom', i % 5, 'tags', jsonb_build_array('a', i)) FROM generate_series(30, ${users}, 30) i`);
  await q(`INSERT INTO phone_number (uuid, tenant_uuid, number, caller_id_name, main, shared)
           SELECT md5('pn' || i)::uuid, ${ten("i")}, '+33180' || lpad(i::text, 6, '0'), 'Ligne ' || i, CASE WHEN i <= ${T} THEN 'main'::phone_number_main END, i % 9 = 0
             FROM generate_series(1, ${Math.max(T, Math.floor(users / 5))}) i`);
  await q(
    `INSERT INTO blocklist (uuid, tenant_uuid) SELECT md5('bl' || i)::uuid, ${ten("i")} FROM generate_series(7, ${users}, 7) i`,
  );
  await q(
    `INSERT INTO blocklist_user (user_uuid, blocklist_uuid) SELECT md5('user' || i)::uuid::text, md5('bl' || i)::uuid FROM generate_series(7, ${users}, 7) i`,
  );
  await q(`INSERT INTO blocklist_number (uuid, blocklist_uuid, number, label)
           SELECT md5('bln' || i || ':' || k)::uuid, md5('bl' || i)::uuid, '+3389' || lpad((i * 10 + k)::text, 7, '0'), CASE WHEN k = 1 THEN 'Démarcheur' END
             FROM generate_series(7, ${users}, 7) i, generate_series(1, 3) k`);
  await q(`INSERT INTO plugin_note (topic, body, weight)
           SELECT 'note-' || (i % 7), CASE WHEN i % 5 = 0 THEN NULL ELSE 'même texte' END, (i % 3) * 1.5 FROM generate_series(1, 40) i`);

  // Excluded tables, with rows: they must stay as each node has them.
  const calls = Math.max(100, Math.floor(users / 2));
  await q(`INSERT INTO call_log (date, date_answer, date_end, source_name, source_exten, destination_exten, user_field)
           SELECT timestamptz '2025-03-01 00:00:00+00' + i * interval '1 minute', NULL, NULL, 'Appelant ' || i, (1000 + i % ${users})::text, (1000 + (i * 7) % ${users})::text, ''
             FROM generate_series(1, ${calls}) i`);
  await q(`INSERT INTO call_log_participant (uuid, call_log_id, user_uuid, role, answered)
           SELECT md5('clp' || i)::uuid, i, md5('user' || (1 + i % ${users}))::uuid::text, (CASE WHEN i % 2 = 0 THEN 'source' ELSE 'destination' END)::call_log_participant_role, i % 3 = 0
             FROM generate_series(1, ${calls}) i`);
  await q(`INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame, uniqueid, linkedid, call_log_id)
           SELECT 'CHAN_START', timestamp '2025-03-01 00:00:00' + i * interval '1 second', 'Appelant ' || i, (1000 + i % 500)::text, 's', 'internal-1',
                  'PJSIP/x-' || lpad(to_hex(i), 8, '0'), '1700000000.' || i, '1700000000.' || (i - i % 4), 1 + (i - 1) / 4
             FROM generate_series(1, ${4 * calls}) i`);
  await q(`INSERT INTO queue_log (time, callid, queuename, agent, event, data1)
           SELECT to_char(timestamp '2025-03-01 00:00:00' + i * interval '2 seconds', 'YYYY-MM-DD HH24:MI:SS.US'), 'call' || i, 'q-' || (1 + i % ${Q}), 'Agent/' || (8000 + i % ${A}), 'ENTERQUEUE', ''
             FROM generate_series(1, ${calls}) i`);
  await q(
    `INSERT INTO stat_agent (name, number, tenant_uuid, agent_id) SELECT 'Agent/' || (8000 + i), (8000 + i)::text, ${ten("i")}, i FROM generate_series(1, ${A}) i`,
  );
  await q(
    `INSERT INTO stat_queue (name, tenant_uuid, queue_id) SELECT 'q-' || i, ${ten("i")}, i FROM generate_series(1, ${Q}) i`,
  );
  await q(`INSERT INTO stat_call_on_queue (callid, time, status, stat_queue_id, stat_agent_id)
           SELECT 'call' || i, timestamptz '2025-03-01 00:00:00+00' + i * interval '3 seconds', 'answered', 1 + i % ${Q}, 1 + i % ${A} FROM generate_series(1, ${calls}) i`);
  await q(
    `INSERT INTO session (sessid, start, expire, data, user_id) VALUES ('${"a".repeat(32)}', 1700000000, 1700003600, 'x', 1)`,
  );
  await q(`INSERT INTO dhcp (pool_start, pool_end) VALUES ('10.0.0.100', '10.0.0.200')`);
  await q(`INSERT INTO mail (mydomain, relayhost) VALUES ('master.example.com', 'smtp.example.com')`);
  await q(`INSERT INTO monitoring (alert_emails, maintenance) VALUES ('ops@example.com', 0)`);
  await q(
    `INSERT INTO netiface (ifname, networktype, type, family, method, address, netmask) VALUES ('eth0', 'voip', 'iface', 'inet', 'static', '10.0.0.1', '255.255.255.0')`,
  );
  await q(`INSERT INTO resolvconf (hostname, domain, nameserver1) VALUES ('master', 'example.com', '10.0.0.254')`);

  // Every column-owned sequence ends where its explicit ids do, as after a real life of inserts.
  await q(`DO $$
           DECLARE r record; m bigint;
           BEGIN
             FOR r IN SELECT s.relname AS seq, t.relname AS tab, a.attname AS col
                        FROM pg_class s
                        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                        JOIN pg_class t ON t.oid = d.refobjid
                        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                       WHERE s.relkind = 'S' AND s.relnamespace = 'public'::regnamespace
             LOOP
               EXECUTE format('SELECT max(%I) FROM public.%I', r.col, r.tab) INTO m;
               IF m IS NOT NULL THEN PERFORM setval(format('public.%I', r.seq), m); END IF;
             END LOOP;
           END $$`);
  await q(`SELECT nextval('provisioning_seq') FROM generate_series(1, 3)`);
  await q("COMMIT");
}
