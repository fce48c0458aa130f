import { nextAlarm, type AlarmInputs } from "./alarm.js";
import type { ClusterStore } from "./store.js";

/**
 * The probe round's schedule. The alarm is armed for the earliest of the round, a delivery and a
 * maintenance boundary (alarm.ts); when it fires early, the round's own time is kept here.
 */
export class RoundSchedule {
  constructor(
    private readonly store: ClusterStore,
    private readonly storage: DurableObjectStorage,
  ) {}

  /** The round's time when the armed alarm was pulled in before it; null: the alarm is the round's own. */
  get pending(): number | null {
    return this.store.get("roundAt");
  }

  /** Arms the alarm for the round due at `roundDue`, or earlier for a delivery or a boundary. */
  async arm(inputs: AlarmInputs): Promise<void> {
    const plan = nextAlarm(inputs);
    if (!plan) return;
    this.store.put("roundAt", plan.roundPending);
    await this.storage.setAlarm(plan.at);
  }

  /** Right after an event: the round keeps its time, the alarm comes sooner if a delivery or boundary is due. */
  async pullIn(inputs: Omit<AlarmInputs, "roundDue">): Promise<void> {
    await this.arm({ ...inputs, roundDue: this.pending ?? (await this.storage.getAlarm()) });
  }

  /**
   * After a PUT: the first round runs at once (`due` now); on an update, a shorter interval must
   * not wait out the old, longer one, so the round comes no later than `due`.
   */
  async configured(due: number, now: number): Promise<void> {
    const alarm = await this.storage.getAlarm();
    if (alarm === null || alarm > due) {
      await this.storage.setAlarm(alarm === null ? now : due);
      this.store.put("roundAt", null); // the armed alarm is the round's own again
    } else if ((this.pending ?? 0) > due) this.store.put("roundAt", due);
  }
}
