import type pg from "pg";
import { seededRandom } from "./random.js";

/**
 * Random, reproducible changes to a database seeded by seedWazoFull: what an administrator does
 * on the master between two replications (inserts, updates, deletes, primary-key changes, over
 * many tables), and what should never happen on a standby but does (stray writes there). The
 * same seed on the same data gives the same changes.
 */

export interface MutationCounts {
  inserts: number;
  updates: number;
  deletes: number;
  keyChanges: number;
}

type Kind = keyof MutationCounts;

interface Op {
  kind: Kind;
  /** Runs the change; `n` is a fresh number from the RNG's stream, `pick(table, key)` a random existing key. */
  run(c: pg.ClientBase, n: number, pick: Picker): Promise<number>;
}

type Picker = (table: string, key: string) => Promise<string | null>;

/** A random existing value of `key` in `table` (ordered by it, at a random offset), or null when empty. */
function picker(c: pg.ClientBase, rnd: () => number): Picker {
  return async (table, key) => {
    const n = await c.query<{ n: string }>(`SELECT count(*) AS n FROM public.${table}`);
    const count = Number(n.rows[0]!.n);
    if (!count) return null;
    const r = await c.query<{ k: string }>(
      `SELECT ${key}::text AS k FROM public.${table} ORDER BY ${key} OFFSET $1 LIMIT 1`,
      [Math.floor(rnd() * count)],
    );
    return r.rows[0]?.k ?? null;
  };
}

const rows = (r: pg.QueryResult) => r.rowCount ?? 0;

/** What the master's administrator does. */
const MASTER_OPS: Op[] = [
  // A new user with its private template, its line and extension (the serial sequences advance).
  {
    kind: "inserts",
    async run(c, n) {
      const r = await c.query(
        `WITH t AS (SELECT uuid FROM tenant ORDER BY uuid LIMIT 1),
              k AS (INSERT INTO func_key_template (tenant_uuid, private) SELECT uuid, true FROM t RETURNING id, tenant_uuid),
              u AS (INSERT INTO userfeatures (uuid, firstname, lastname, tenant_uuid, func_key_private_template_id, enablednd)
                    SELECT md5('new-user' || $1::text)::uuid::text, 'Nouvel·le', 'Utilisateur ' || $1::text, tenant_uuid, id, 1 FROM k RETURNING id, tenant_uuid),
              l AS (INSERT INTO linefeatures (name, context, provisioningid, tenant_uuid)
                    SELECT 'new-line-' || $1::text, (SELECT name FROM context WHERE contexttype = 'internal' ORDER BY name LIMIT 1), 123456, tenant_uuid FROM u RETURNING id),
              ul AS (INSERT INTO user_line (user_id, line_id, main_user, main_line) SELECT u.id, l.id, true, true FROM u, l RETURNING 1)
         INSERT INTO extensions (context, exten, type, typeval)
         SELECT (SELECT name FROM context WHERE contexttype = 'internal' ORDER BY name LIMIT 1), 'new-' || $1::text, 'user', u.id::text FROM u, ul`,
        [n],
      );
      return 4 * rows(r);
    },
  },
  {
    kind: "inserts",
    async run(c, n, pick) {
      const sec = await pick("endpoint_sip_section", "uuid");
      if (!sec) return 0;
      return rows(
        await c.query(
          `INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid) VALUES ('set_var', 'ADDED=' || $1::text || ' é', $2)`,
          [n, sec],
        ),
      );
    },
  },
  {
    kind: "inserts",
    async run(c, n) {
      // Two identical rows in the table without a key.
      return rows(
        await c.query(
          `INSERT INTO plugin_note (topic, body, weight) VALUES ('dup-' || $1::text, 'x', 1), ('dup-' || $1::text, 'x', 1)`,
          [n],
        ),
      );
    },
  },
  // A user's own state, as the phone's feature codes change it.
  {
    kind: "updates",
    async run(c, n, pick) {
      const id = await pick("userfeatures", "id");
      return rows(
        await c.query(
          `UPDATE userfeatures SET enablednd = 1 - enablednd, enableunc = 1, destunc = '06' || lpad($2::text, 8, '0'),
                                   enablebusy = 1 - enablebusy, incallfilter = 1 - incallfilter WHERE id = $1`,
          [id, n % 100_000_000],
        ),
      );
    },
  },
  {
    kind: "updates",
    async run(c, n, pick) {
      const id = await pick("userfeatures", "id");
      return rows(
        await c.query(
          `UPDATE userfeatures SET firstname = '🦉 Chouette ' || $2::text, description = E'ligne 1\\nligne 2' WHERE id = $1`,
          [id, n],
        ),
      );
    },
  },
  {
    kind: "updates",
    async run(c, n, pick) {
      const u = await pick("endpoint_sip_section_option", "uuid");
      return rows(
        await c.query(`UPDATE endpoint_sip_section_option SET value = value || '-' || $2::text WHERE uuid = $1`, [
          u,
          n,
        ]),
      );
    },
  },
  {
    kind: "updates",
    async run(c, n, pick) {
      const id = await pick("func_key_mapping", "func_key_id");
      return rows(
        await c.query(
          `UPDATE func_key_mapping SET label = 'Touche ' || $2::text, blf = NOT blf WHERE func_key_id = $1`,
          [id, n],
        ),
      );
    },
  },
  {
    kind: "updates",
    async run(c, n) {
      // One byte of a large value.
      return rows(
        await c.query(
          `UPDATE attachment SET file = set_byte(file, $2::int % length(file), $2::int % 256) WHERE id = 1 + $1::int % 4`,
          [n, n],
        ),
      );
    },
  },
  {
    kind: "updates",
    async run(c) {
      // Across the tenant ⇄ endpoint_sip cycle: a tenant swaps two of its templates.
      return rows(
        await c.query(
          `UPDATE tenant SET global_sip_template_uuid = webrtc_sip_template_uuid, webrtc_sip_template_uuid = global_sip_template_uuid
            WHERE uuid = (SELECT uuid FROM tenant ORDER BY uuid LIMIT 1)`,
        ),
      );
    },
  },
  {
    kind: "deletes",
    async run(c, _n, pick) {
      const u = await pick("endpoint_sip_section_option", "uuid");
      return rows(await c.query(`DELETE FROM endpoint_sip_section_option WHERE uuid = $1`, [u]));
    },
  },
  {
    kind: "deletes",
    async run(c, _n, pick) {
      const v = await pick("dialaction", "categoryval");
      return rows(await c.query(`DELETE FROM dialaction WHERE category = 'user' AND categoryval = $1`, [v]));
    },
  },
  {
    kind: "deletes",
    async run(c, _n, pick) {
      // A blocklist goes, its numbers and its user link by cascade.
      const u = await pick("blocklist", "uuid");
      return rows(await c.query(`DELETE FROM blocklist WHERE uuid = $1`, [u]));
    },
  },
  {
    kind: "deletes",
    async run(c) {
      // One of several identical rows of the keyless table.
      return rows(
        await c.query(
          `DELETE FROM plugin_note WHERE ctid = (SELECT ctid FROM plugin_note WHERE topic = 'note-1' ORDER BY ctid LIMIT 1)`,
        ),
      );
    },
  },
  // Primary-key changes: the row stays, its key moves.
  {
    kind: "keyChanges",
    async run(c, n, pick) {
      const u = await pick("endpoint_sip_section_option", "uuid");
      return rows(
        await c.query(`UPDATE endpoint_sip_section_option SET uuid = md5('moved' || $2::text)::uuid WHERE uuid = $1`, [
          u,
          n,
        ]),
      );
    },
  },
  {
    kind: "keyChanges",
    async run(c, n) {
      // An incall's extension (nothing references it by id) takes a new id from its sequence.
      const r = await c.query(
        `UPDATE extensions SET id = nextval('extensions_id_seq')
          WHERE id = (SELECT id FROM extensions WHERE type = 'incall' ORDER BY id OFFSET $1::int % greatest(1, (SELECT count(*) FROM extensions WHERE type = 'incall')) LIMIT 1)`,
        [n],
      );
      return rows(r);
    },
  },
  {
    kind: "keyChanges",
    async run(c, n, pick) {
      const v = await pick("queuemember", "interface");
      return rows(
        await c.query(`UPDATE queuemember SET interface = interface || '-' || $2::text WHERE interface = $1`, [v, n]),
      );
    },
  },
];

/** What lands on a standby by mistake: a hand-made fix, a stray script, a sequence moved ahead. */
const STRAY_OPS: Op[] = [
  {
    kind: "updates",
    async run(c, _n, pick) {
      const id = await pick("userfeatures", "id");
      return rows(
        await c.query(
          `UPDATE userfeatures SET enablednd = 1 - enablednd, lastname = lastname || ' (slave)' WHERE id = $1`,
          [id],
        ),
      );
    },
  },
  {
    kind: "deletes",
    async run(c, _n, pick) {
      const u = await pick("endpoint_sip_section_option", "uuid");
      return rows(await c.query(`DELETE FROM endpoint_sip_section_option WHERE uuid = $1`, [u]));
    },
  },
  {
    kind: "inserts",
    async run(c, n) {
      return rows(
        await c.query(
          `INSERT INTO extensions (context, exten, type, typeval) VALUES ((SELECT name FROM context ORDER BY name LIMIT 1), 'stray-' || $1::text, 'user', '0')`,
          [n],
        ),
      );
    },
  },
  {
    kind: "inserts",
    async run(c, n) {
      return rows(await c.query(`INSERT INTO plugin_note (topic, body) VALUES ('stray-' || $1::text, NULL)`, [n]));
    },
  },
  {
    kind: "keyChanges",
    async run(c, n, pick) {
      const v = await pick("dialaction", "categoryval");
      return rows(
        await c.query(
          `UPDATE dialaction SET categoryval = 'stray-' || $2::text WHERE category = 'user' AND categoryval = $1 AND event = 'busy'`,
          [v, n],
        ),
      );
    },
  },
];

async function apply(c: pg.ClientBase, ops: Op[], seed: number, count: number): Promise<MutationCounts> {
  const rnd = seededRandom(seed);
  const pick = picker(c, rnd);
  const out: MutationCounts = { inserts: 0, updates: 0, deletes: 0, keyChanges: 0 };
  await c.query("BEGIN");
  try {
    for (let i = 0; i < count; i++) {
      const op = ops[Math.floor(rnd() * ops.length)]!;
      out[op.kind] += await op.run(c, Math.floor(rnd() * 1e9), pick);
    }
    await c.query("COMMIT");
  } catch (err) {
    await c.query("ROLLBACK");
    throw err;
  }
  return out;
}

/** `count` random changes on the master, in one transaction; returns how many rows each kind touched. */
export function mutateMaster(c: pg.ClientBase, seed: number, count = 40): Promise<MutationCounts> {
  return apply(c, MASTER_OPS, seed, count);
}

/** `count` stray writes on the slave, and its free sequence moved ahead. */
export async function strayWrites(c: pg.ClientBase, seed: number, count = 10): Promise<MutationCounts> {
  const out = await apply(c, STRAY_OPS, seed, count);
  await c.query(`SELECT nextval('provisioning_seq')`);
  return out;
}
