"""The supplier simulator: a stand-alone process that plays a 福禄 (Fulu) open-platform supplier from its side.

It verifies signed gateway requests, lists goods, takes 话费 / 直充 / 卡密 orders, answers order queries and sends
signed callbacks (with retries) to each merchant's notify URL — with knobs for latency, refusals, failures, lost
replies, late and duplicate callbacks, and stock, and a count of how many times each `customer_order_no` was
submitted (the benchmark checks exactly-once). `python -m kameng.simulators.supplier --help`.

It needs neither Django nor a database (state in memory) and shares no code with the connector it talks to
(kameng.suppliers.connectors.fulu): the signature is implemented twice on purpose, so one cannot hide the other's
mistake. Production code never imports it.
"""
