// Preload for `archio node` processes (node --import): injects a defect when the test sends
// SIGUSR2, so a test can watch a real node process fail and stop.
//   ARCHIO_FAULT=escape        an exception thrown outside every actor (a bare timer)
//   ARCHIO_FAULT=gateway-clock the Gateway's deadline sweep finds the clock throwing
const fault = process.env.ARCHIO_FAULT
if (fault === "escape") {
  process.on("SIGUSR2", () => {
    setTimeout(() => {
      throw new Error("a defect outside every actor")
    }, 0)
  })
} else if (fault === "gateway-clock") {
  const realNow = Date.now
  let armed = false
  process.on("SIGUSR2", () => {
    armed = true
  })
  Date.now = () => {
    if (armed && /\bsweep\b/.test(new Error().stack ?? "")) {
      armed = false
      throw new Error("the clock failed inside the Gateway's sweep")
    }
    return realNow()
  }
}
