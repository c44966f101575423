# First write (4 KiB + fsync) latency against the inherited file's size, log-log.
# gnuplot -e "out='X.png'; data='fw.dat'; lib='0|1'" first_write.gp
# Data: "bytes tessera_fuse overlayfs tessera_library" (NaN = none).
set terminal pngcairo size 900,650 font ",10" noenhanced
set output out
set title "First write after a snapshot: open + 4 KiB pwrite + fsync"
set logscale xy
set xlabel "inherited file size (bytes, log)"
set ylabel "latency, µs (log)"
set grid
set key left top
set format x "%.0s%cB"
if (lib+0) {
  plot data using 1:2 with linespoints lw 2 pt 7 title "tessera (FUSE file, p50)", \
       data using 1:3 with linespoints lw 2 pt 5 title "overlayfs (median)", \
       data using 1:4 with linespoints lw 2 pt 9 title "tessera library (tsr_bench, p50)"
} else {
  plot data using 1:2 with linespoints lw 2 pt 7 title "tessera (FUSE file, p50)", \
       data using 1:3 with linespoints lw 2 pt 5 title "overlayfs (median)"
}
