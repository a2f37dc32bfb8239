"""Column and slot indices of the engine's plain arrays (numba folds module-level ints into constants).

The engine's state is five numpy arrays, so it compiles with numba, crosses threads without the
GIL, and persists as plain numbers:

- `sf` float64[N_SF]   scalars: balances, dust, risk marks, quiet band, grid geometry, DCA cycle
- `si` int64[N_SI]     scalars: bar counter, regime/hysteresis, engine kind, flags, counters
- `grid` float64[MAX_LEVELS, N_GC] per grid cell: held qty (lot multiple), its cost, level prices
- `legacy` float64[MAX_LEGACY, N_XC] exits kept across regime switches: qty, cost, price, stop
- `orders` float64[MAX_ORDERS, N_OC] the desired open orders decided at the last close

Parameter tables (`P`, one row per regime), the rules vector (`core.market_rules.R_*`) and the run
settings (`S_*`) are inputs only.
"""

from __future__ import annotations

# ---- parameter table columns: one row per regime -------------------------------------------------
P_ENGINE = 0  # ENGINE_NONE / ENGINE_GRID / ENGINE_DCA
P_G_GEOMETRIC = 1  # 1 geometric spacing, 0 arithmetic
P_G_STEP_PCT = 2  # dynamic range: distance between levels, percent of the arming price
P_G_LEVELS = 3  # price levels (lines); levels - 1 cells can hold inventory
P_G_FIXED = 4  # 1: fixed range lower..upper, 0: dynamic around the arming close
P_G_LOWER = 5
P_G_UPPER = 6
P_G_ORDER_QUOTE = 7  # per level, quote currency
P_G_TRAILING_UP = 8
P_G_STOP_LOSS = 9  # absolute price, 0 = none
P_G_TAKE_PROFIT = 10  # absolute price, 0 = none
P_D_BASE_QUOTE = 11
P_D_SO_QUOTE = 12
P_D_MAX_SO = 13  # averaging depth
P_D_DEV_PCT = 14
P_D_STEP_SCALE = 15
P_D_VOL_SCALE = 16
P_D_TP_PCT = 17
P_D_TRAIL_PCT = 18  # 0 = no trailing take-profit
P_D_SL_PCT = 19  # 0 = no stop-loss
P_D_COOLDOWN = 20  # bars between a cycle's exit and the next base order
P_G_ATR_MULT = 21  # dynamic range sized by ATR: close +/- mult x ATR at arming; 0 = off (grid_step_pct)
P_G_ATR_BARS = 22  # the ATR's window, closed bars (1..MAX_ATR_BARS)
N_PARAMS = 23

ENGINE_NONE = 0
ENGINE_GRID = 1
ENGINE_DCA = 2

# ---- run settings vector ---------------------------------------------------------------------------
S_CAPITAL = 0  # quote allocated to this pair (starting cash)
S_MAX_EXPOSURE = 1  # fraction of S_CAPITAL that may be held as inventory, at cost
S_MAX_DD = 2  # fraction; 0 = off
S_DAILY_LOSS = 3  # fraction; 0 = off
S_SELL_ON_KILL = 4
S_TOUCH = 5  # touch-fills
S_MIN_DWELL = 6
S_MIN_PROB = 7
S_MARKET_BUFFER = 8  # cash reserved for a market buy above its value at the close (fraction)
N_SETTINGS = 9

# ---- float scalars ---------------------------------------------------------------------------------
F_CASH = 0  # quote balance: free plus locked in open buys
F_INV = 1  # base balance: every bucket plus dust
F_DUST = 2  # base below one lot, held by no bucket; swept into the next buy's bucket
F_INV_COST = 3  # cost in quote of all buckets (dust carries none)
F_EQ_PEAK = 4
F_DAY_START_EQ = 5
F_LAST_EQ = 6
F_BAND_LO = 7  # orders stand while BAND_LO < close <= BAND_HI and nothing else happened
F_BAND_HI = 8
F_MAX_BUY = 9  # highest resting buy (-inf: none); a bar can only fill if low reaches it ...
F_MIN_SELL = 10  # ... or high reaches the lowest resting sell (+inf: none)
F_G_LO = 11  # grid: raw price of level 0
F_G_STEP = 12  # grid: ratio (geometric) or quote step (arithmetic)
F_D_POS = 13  # DCA cycle: position qty (lot multiples)
F_D_COST = 14  # DCA cycle: cost of the position still held, quote
F_D_VWAP_NUM = 15  # DCA cycle: sum(qty * price) over the cycle's buy fills (average entry)
F_D_VWAP_DEN = 16
F_D_PEAK = 17  # trailing take-profit: highest close since activation
F_D_CYCLE_PNL = 18
F_FEES = 19  # fees paid, quote value
F_TURNOVER = 20  # traded value, quote
F_REALIZED = 21
F_GROSS_PROFIT = 22
F_GROSS_LOSS = 23
F_D_ENTRY = 24  # DCA cycle: base order fill price (safety-order deviations are measured from it)
F_G_TRAIL_AT = 25  # grid: raw price one step above the top level (trailing up triggers at or above it)
F_LEG_STOP = 26  # highest stop of the legacy exits resting as limits (-inf: none)
F_LEG_COST = 27  # cost of all legacy exits, summed in slot order (kept current on every change)
F_LEG_MIN_SELL = 28  # lowest legacy limit sell (+inf: none)
F_PREV_CLOSE = 29  # close of the last closed bar (nan: none yet), for the next bar's true range
N_SF = 30

# ---- int scalars -----------------------------------------------------------------------------------
I_BAR = 0  # index of the last closed bar (-1 before the first)
I_ACTIVE = 1  # active regime (row of P), -1 none yet
I_CAND = 2  # hysteresis candidate regime
I_CAND_N = 3  # bars the candidate has held
I_ENGINE = 4  # engine kind armed for the active regime
I_EPOCH = 5  # incremented at every arming; orders carry it so stale fills are recognised
I_G_CELLS = 6  # levels - 1
I_G_HALTED = 7  # grid stop-loss / take-profit hit: no new entries until the next arming
I_D_IN_CYCLE = 8
I_D_NSO = 9  # safety orders filled in this cycle
I_D_TRAILING = 10
I_D_COOLDOWN_UNTIL = 11  # first bar whose close may place the next base order
I_N_ORDERS = 12
I_HAS_MARKET = 13
I_DIRTY = 14  # something changed (a fill): re-decide at the next close
I_KILLED = 15
I_DAY_PAUSED = 16
I_DAY_END_TS = 17  # first ts (ms) of the UTC day after the last closed bar's day
I_ENTRIES_OK = 18  # risk allows entries (kill switch and daily limit both clear)
I_NEXT_EVENT_BAR = 19  # a timer (cooldown) re-decides at this bar
I_N_LEGACY = 20  # high-water mark of used legacy slots
I_N_FILLS = 21
I_N_BUYS = 22
I_N_SELLS = 23
I_N_CYCLES = 24
I_N_WINS = 25
I_N_REJECTED = 26  # order intents refused by the exchange rules (at decision or at a market fill)
I_N_BLOCKED = 27  # entry intents left out for want of cash or exposure room
I_N_SWITCHES = 28
I_LOG_OVERFLOW = 29
I_N_DECISIONS = 30  # closes that re-decided the order set
I_LEG_DIRTY = 31  # the legacy exits changed: their orders (the table's prefix) must be rebuilt
I_N_LEG_ORDERS = 32  # orders[:I_N_LEG_ORDERS] are the legacy exits' orders, kept between decisions
I_LEG_HAS_MARKET = 33  # one of them is a market order (a stop was hit)
I_ATR_N = 34  # true ranges recorded in the ring (G_TR) so far; recorded only while a regime uses ATR
N_SI = 35

# ---- per-cell grid and legacy tables ----------------------------------------------------------------
MAX_LEVELS = 512
G_QTY = 0
G_COST = 1
G_PNL = 2  # realized so far on this cell's current holding (partial sells)
G_BUY_PX = 3  # level k's buy price on the tick grid (cached at arming / trailing shift)
G_SELL_PX = 4  # level k's sell price on the tick grid
G_BUY_AMT = 5  # cell k's buy amount (order_size_quote / buy price, on the lot grid)
G_BUY_OK = 6  # 1 when that buy passes the venue's minimums
G_TR = 7  # not per cell: a ring of the last MAX_ATR_BARS true ranges (row = bar number % MAX_ATR_BARS)
N_GC = 8
MAX_ATR_BARS = 500

MAX_LEGACY = 1024
X_QTY = 0
X_COST = 1
X_PRICE = 2
X_STOP = 3  # stop price, 0 = none
X_PNL = 4
N_XC = 5

# ---- desired orders --------------------------------------------------------------------------------
MAX_ORDERS = MAX_LEVELS + MAX_LEGACY + 64
O_PRICE = 0  # limit price; for market orders the close they were decided at (an estimate)
O_AMOUNT = 1  # base amount, on the lot grid
O_SIDE = 2  # +1 buy, -1 sell
O_KIND = 3
O_REF = 4  # grid cell, safety-order number or legacy slot
O_MARKET = 5  # 1: market order, fills at the next bar's open with the taker fee
O_EPOCH = 6
O_AUX = 7  # for buys: the exit price intended for what it buys (used if the fill arrives stale)
O_T = 8  # scratch for fill_bar: where along the bar the order fills (-1: it does not)
N_OC = 9

KIND_GRID_BUY = 1
KIND_GRID_SELL = 2
KIND_GRID_STOP = 3  # market sell of every grid cell (grid stop-loss / take-profit)
KIND_DCA_BASE = 4  # market buy
KIND_DCA_SO = 5
KIND_DCA_TP = 6
KIND_DCA_EXIT = 7  # market sell of the cycle (stop-loss or trailing take-profit)
KIND_LEGACY_SELL = 8
KIND_LEGACY_EXIT = 9  # market sell of a legacy exit whose stop was hit
KIND_KILL = 10  # market sell of all inventory (kill switch with sell_inventory_on_kill)
KIND_NAMES = (
    "", "grid_buy", "grid_sell", "grid_stop", "dca_base", "dca_safety", "dca_take_profit",
    "dca_exit", "legacy_sell", "legacy_exit", "kill_sell",
)
ENTRY_KINDS = (KIND_GRID_BUY, KIND_DCA_BASE, KIND_DCA_SO)

# ---- fill log ----------------------------------------------------------------------------------------
L_BAR = 0
L_T = 1  # position along the bar's path, 0 = open .. 3 = close
L_SIDE = 2
L_KIND = 3
L_REF = 4
L_PRICE = 5
L_QTY = 6
L_FEE_QUOTE = 7
L_PNL = 8  # realized on sells (net of both fees), 0 on buys
L_CASH = 9  # after the fill
L_INV = 10
L_AVG_ENTRY = 11  # DCA cycle average entry after the fill (buys), else nan
L_TAKER = 12
L_REGIME = 13
N_LC = 14
